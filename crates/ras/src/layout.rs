// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! Compile-time pins of the wire structs' layouts.
//!
//! Every byte layout the guest or a tool reads is a `#[repr(C, packed)]`
//! zerocopy struct whose size and field offsets come from a spec table
//! (UEFI 2.10 appendix N for CPER, ACPI 6.5 section 18.3 for the HEST).
//! [`wire_layout!`](crate::wire_layout) states those numbers next to the
//! struct; a struct that drifts from them, or has a field the pin does not
//! name, does not compile, so no test run is needed to notice (the style of
//! `acpi_tables`' `assert_same_size!`).

/// Pins the size of a wire struct and the offset of each named field at
/// compile time: `wire_layout!(Type = size; field @ offset, ...)`, the
/// numbers copied from the spec table that defines the struct (not computed
/// from the struct). A mismatch is a compile error naming the struct and
/// the field. Every field must be named: the sizes of the named fields must
/// add up to the struct's (a packed struct has no padding), so a field left
/// out of the pin, or added to the struct and not to the pin, is a compile
/// error too.
///
/// ```
/// #[repr(C, packed)]
/// struct Pair {
///     a: u8,
///     b: u32,
/// }
/// ras::wire_layout!(Pair = 5; a @ 0, b @ 1);
/// ```
///
/// The same struct with `b` pinned one byte off does not compile:
///
/// ```compile_fail
/// #[repr(C, packed)]
/// struct Pair {
///     a: u8,
///     b: u32,
/// }
/// ras::wire_layout!(Pair = 5; a @ 0, b @ 2);
/// ```
///
/// nor with the size wrong:
///
/// ```compile_fail
/// #[repr(C, packed)]
/// struct Pair {
///     a: u8,
///     b: u32,
/// }
/// ras::wire_layout!(Pair = 8; a @ 0, b @ 1);
/// ```
///
/// nor with a field not pinned:
///
/// ```compile_fail
/// #[repr(C, packed)]
/// struct Pair {
///     a: u8,
///     b: u32,
/// }
/// ras::wire_layout!(Pair = 5; a @ 0);
/// ```
#[macro_export]
macro_rules! wire_layout {
    ($t:ty = $size:expr; $($field:ident @ $off:expr),+ $(,)?) => {
        const _: () = {
            assert!(
                ::core::mem::size_of::<$t>() == $size,
                concat!("size of ", stringify!($t), " differs from its spec table"),
            );
            $(
                assert!(
                    ::core::mem::offset_of!($t, $field) == $off,
                    concat!(
                        "offset of ", stringify!($t), ".", stringify!($field),
                        " differs from its spec table"
                    ),
                );
            )+
            assert!(
                0 $(+ $crate::layout::field_size(|wire: $t| wire.$field))+
                    == ::core::mem::size_of::<$t>(),
                concat!(
                    "the pin of ", stringify!($t),
                    " does not name all its fields (their sizes do not add up to its size)"
                ),
            );
        };
    };
}

/// The size of the field `read` returns (by value: a packed struct's field
/// cannot be borrowed). For [`wire_layout!`](crate::wire_layout).
#[doc(hidden)]
pub const fn field_size<T, F>(_read: fn(T) -> F) -> usize {
    size_of::<F>()
}
