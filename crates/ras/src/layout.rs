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
//! struct; a struct that drifts from them does not compile, so no test
//! run is needed to notice (the style of `acpi_tables`' `assert_same_size!`).

/// Pins the size of a wire struct and the offset of each named field at
/// compile time: `wire_layout!(Type = size; field @ offset, ...)`, the
/// numbers copied from the spec table that defines the struct (not computed
/// from the struct). A mismatch is a compile error naming the struct and
/// the field.
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
        };
    };
}
