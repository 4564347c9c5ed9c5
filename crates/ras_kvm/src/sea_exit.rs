// SPDX-License-Identifier: Apache-2.0
//! `KVM_EXIT_ARM_SEA`: a synchronous external abort (SEA) that a guest took
//! to EL2, that host APEI did not claim, forwarded to userspace because the
//! VM enabled `KVM_CAP_ARM_SEA_TO_USER` (Linux 6.19+, series "KVM: arm64: VM
//! exit to userspace to handle SEA").
//!
//! uAPI (`include/uapi/linux/kvm.h`), inside the `kvm_run` exit union:
//!
//! ```text
//! /* KVM_EXIT_ARM_SEA */
//! struct {
//!     __u64 flags;   /* KVM_EXIT_ARM_SEA_FLAG_GPA_VALID = 1 << 0 */
//!     __u64 esr;     /* sanitized ESR_EL2 */
//!     __u64 gva;     /* valid iff ESR.FnV == 0 */
//!     __u64 gpa;     /* valid iff KVM_EXIT_ARM_SEA_FLAG_GPA_VALID */
//! } arm_sea;
//! ```
//!
//! kvm-bindings 0.14 knows neither the exit nor the capability, so the
//! numbers are defined here, and kvm-ioctls 0.25 returns
//! `VcpuExit::Unsupported(41)` for this exit: on that value, read the union
//! with [`SeaExit::from_kvm_run`] (or [`read_raw`]) from
//! `VcpuFd::get_kvm_run()`.
//!
//! KVM does not advance the PC and does not isolate the page: the VMM must
//! contain the page and then inject an abort (see
//! [`crate::abort_inject`]), synchronously on the vCPU thread.

use kvm_bindings::kvm_run;
use ras::report::{AbortKind, ErrorCause, ErrorReport, GpaGranule, MIN_GRANULE_SHIFT, SyncOrigin};
use thiserror::Error;

use crate::clock::ReportTime;

/// `KVM_EXIT_ARM_SEA` exit reason (`include/uapi/linux/kvm.h`).
pub const KVM_EXIT_ARM_SEA: u32 = 41;
/// `KVM_CAP_ARM_SEA_TO_USER` VM capability (`include/uapi/linux/kvm.h`).
pub const KVM_CAP_ARM_SEA_TO_USER: u32 = 245;
/// `arm_sea.gpa` is valid.
pub const KVM_EXIT_ARM_SEA_FLAG_GPA_VALID: u64 = 1 << 0;
/// Byte offset of the exit union inside `struct kvm_run`.
pub const KVM_RUN_EXIT_UNION_OFFSET: usize = 32;

/// ESR_ELx.EC: instruction abort from a lower EL (ARM ARM D24.2.40).
pub const EC_IABT_LOW: u8 = 0x20;
/// ESR_ELx.EC: instruction abort taken without a change in EL.
pub const EC_IABT_CUR: u8 = 0x21;
/// ESR_ELx.EC: data abort from a lower EL.
pub const EC_DABT_LOW: u8 = 0x24;
/// ESR_ELx.EC: data abort taken without a change in EL.
pub const EC_DABT_CUR: u8 = 0x25;
/// DFSC/IFSC: synchronous external abort, not on a translation table walk.
pub const FSC_SEA: u8 = 0x10;

/// The `arm_sea` member of the `kvm_run` exit union, exactly as the kernel
/// lays it out.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KvmArmSeaExit {
    /// `KVM_EXIT_ARM_SEA_FLAG_*`.
    pub flags: u64,
    /// Sanitized ESR_EL2 of the abort.
    pub esr: u64,
    /// Faulting guest virtual address (FAR_EL2), valid iff ESR.FnV == 0.
    pub gva: u64,
    /// Faulting guest physical address, valid iff the GPA-valid flag is set.
    pub gpa: u64,
}

/// Errors decoding a `KVM_EXIT_ARM_SEA`.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum SeaExitError {
    /// The `kvm_run` does not hold this exit.
    #[error("Exit reason {0} is not KVM_EXIT_ARM_SEA (41)")]
    WrongExitReason(u32),
    /// KVM only defines `KVM_EXIT_ARM_SEA_FLAG_GPA_VALID`.
    #[error("Unknown KVM_EXIT_ARM_SEA flags {flags:#x}")]
    UnknownFlags {
        /// The flags as read.
        flags: u64,
    },
    /// KVM only forwards instruction and data aborts.
    #[error("ESR {esr:#x}: exception class {ec:#x} is not an instruction or data abort")]
    NotAnAbort {
        /// ESR.EC.
        ec: u8,
        /// Raw ESR.
        esr: u64,
    },
    /// KVM only forwards synchronous external aborts (and their parity/ECC
    /// and translation-table-walk variants).
    #[error("ESR {esr:#x}: fault status code {fsc:#x} is not a synchronous external abort")]
    NotExternalAbort {
        /// DFSC/IFSC.
        fsc: u8,
        /// Raw ESR.
        esr: u64,
    },
}

/// A typed view of an ESR_ELx value for instruction/data aborts (ARM ARM
/// D24.2.40 "ESR_EL1", ISS encodings for EC 0x20/0x21 and 0x24/0x25).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Esr(pub u64);

impl Esr {
    /// Raw value.
    pub fn raw(self) -> u64 {
        self.0
    }
    /// EC, bits \[31:26\]: exception class.
    pub fn ec(self) -> u8 {
        ((self.0 >> 26) & 0x3f) as u8
    }
    /// IL, bit 25: 32-bit instruction length.
    pub fn il(self) -> bool {
        self.bit(25)
    }
    /// ISS, bits \[24:0\].
    pub fn iss(self) -> u32 {
        (self.0 & 0x01ff_ffff) as u32
    }
    /// ISS2, bits \[55:32\] (FEAT_LS64, FEAT_THE, ...).
    pub fn iss2(self) -> u32 {
        ((self.0 >> 32) & 0x00ff_ffff) as u32
    }
    /// SET, bits \[12:11\]: synchronous error type (FEAT_RAS).
    pub fn set(self) -> u8 {
        ((self.0 >> 11) & 0x3) as u8
    }
    /// FnV, bit 10: FAR not valid.
    pub fn fnv(self) -> bool {
        self.bit(10)
    }
    /// EA, bit 9: external abort type (implementation defined).
    pub fn ea(self) -> bool {
        self.bit(9)
    }
    /// CM, bit 8: cache maintenance (data aborts only, else false).
    pub fn cm(self) -> bool {
        self.is_data_abort() && self.bit(8)
    }
    /// S1PTW, bit 7: fault on a stage-2 walk for a stage-1 walk.
    pub fn s1ptw(self) -> bool {
        self.bit(7)
    }
    /// WnR, bit 6: write, not read (data aborts only, else false).
    pub fn wnr(self) -> bool {
        self.is_data_abort() && self.bit(6)
    }
    /// DFSC/IFSC, bits \[5:0\]: fault status code.
    pub fn fsc(self) -> u8 {
        (self.0 & 0x3f) as u8
    }
    /// Whether EC is a data abort (0x24/0x25).
    pub fn is_data_abort(self) -> bool {
        matches!(self.ec(), EC_DABT_LOW | EC_DABT_CUR)
    }
    /// Whether EC is an instruction abort (0x20/0x21).
    pub fn is_instruction_abort(self) -> bool {
        matches!(self.ec(), EC_IABT_LOW | EC_IABT_CUR)
    }
    fn bit(self, n: u32) -> bool {
        (self.0 >> n) & 1 == 1
    }
}

/// Whether a DFSC/IFSC is one of the synchronous external abort classes
/// KVM forwards (`kvm_vcpu_abt_issea()`): 0x10 SEA; 0x12..=0x17 SEA on a
/// translation table walk (level -2..3); 0x18 parity/ECC; 0x1b..=0x1f
/// parity/ECC on a walk (level -1..3). ARM ARM D24.2.40, DFSC.
pub fn is_external_abort_fsc(fsc: u8) -> bool {
    matches!(fsc, 0x10 | 0x12..=0x18 | 0x1b..=0x1f)
}

/// Whether the aborting access was an instruction fetch or a data access,
/// and whether it was taken from a lower EL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AbortClass {
    /// EC 0x20.
    InstructionLowerEl,
    /// EC 0x21.
    InstructionSameEl,
    /// EC 0x24.
    DataLowerEl,
    /// EC 0x25.
    DataSameEl,
}

impl AbortClass {
    /// The engine's view.
    pub fn kind(self) -> AbortKind {
        match self {
            Self::InstructionLowerEl | Self::InstructionSameEl => AbortKind::Instruction,
            Self::DataLowerEl | Self::DataSameEl => AbortKind::Data,
        }
    }
}

/// A decoded, validated `KVM_EXIT_ARM_SEA`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeaExit {
    /// The sanitized ESR_EL2.
    pub esr: Esr,
    /// Instruction or data abort.
    pub class: AbortClass,
    /// Faulting guest virtual address, when ESR.FnV == 0.
    pub gva: Option<u64>,
    /// Faulting guest physical address, when KVM flagged it valid.
    pub gpa: Option<u64>,
}

/// Decodes and validates the raw exit. Rejects what KVM never produces.
pub fn decode(raw: &KvmArmSeaExit) -> Result<SeaExit, SeaExitError> {
    if raw.flags & !KVM_EXIT_ARM_SEA_FLAG_GPA_VALID != 0 {
        return Err(SeaExitError::UnknownFlags { flags: raw.flags });
    }
    let esr = Esr(raw.esr);
    let class = match esr.ec() {
        EC_IABT_LOW => AbortClass::InstructionLowerEl,
        EC_IABT_CUR => AbortClass::InstructionSameEl,
        EC_DABT_LOW => AbortClass::DataLowerEl,
        EC_DABT_CUR => AbortClass::DataSameEl,
        ec => return Err(SeaExitError::NotAnAbort { ec, esr: raw.esr }),
    };
    if !is_external_abort_fsc(esr.fsc()) {
        return Err(SeaExitError::NotExternalAbort {
            fsc: esr.fsc(),
            esr: raw.esr,
        });
    }
    Ok(SeaExit {
        esr,
        class,
        gva: (!esr.fnv()).then_some(raw.gva),
        gpa: (raw.flags & KVM_EXIT_ARM_SEA_FLAG_GPA_VALID != 0).then_some(raw.gpa),
    })
}

/// Reads the `arm_sea` union member of a `kvm_run`, whatever its exit
/// reason (check `exit_reason == KVM_EXIT_ARM_SEA` first, or use
/// [`SeaExit::from_kvm_run`]).
pub fn read_raw(run: &kvm_run) -> KvmArmSeaExit {
    // SAFETY: every member of the exit union is plain old data and the
    // `padding` member covers the whole union (256 bytes), so every bit
    // pattern is a valid `[c_char; 256]`.
    let bytes = unsafe { run.__bindgen_anon_1.padding };
    let word = |i: usize| {
        let mut w = [0u8; 8];
        for (dst, src) in w.iter_mut().zip(&bytes[i * 8..i * 8 + 8]) {
            *dst = src.to_ne_bytes()[0];
        }
        u64::from_ne_bytes(w)
    };
    KvmArmSeaExit {
        flags: word(0),
        esr: word(1),
        gva: word(2),
        gpa: word(3),
    }
}

impl SeaExit {
    /// Decodes the exit held by `run` (for example `VcpuFd::get_kvm_run()`
    /// after `VcpuExit::Unsupported(41)`).
    pub fn from_kvm_run(run: &kvm_run) -> Result<Self, SeaExitError> {
        if run.exit_reason != KVM_EXIT_ARM_SEA {
            return Err(SeaExitError::WrongExitReason(run.exit_reason));
        }
        decode(&read_raw(run))
    }

    /// Decodes the exit from a vCPU's `kvm_run` mapping.
    pub fn from_vcpu(vcpu: &mut kvm_ioctls::VcpuFd) -> Result<Self, SeaExitError> {
        Self::from_kvm_run(vcpu.get_kvm_run())
    }

    /// The engine report for this exit. The granule is the 4 KiB page
    /// ([`MIN_GRANULE_SHIFT`]) holding the GPA, when KVM gave one: the exit
    /// does not say how much memory is lost.
    pub fn to_report(&self, vcpu: u32, time: ReportTime) -> ErrorReport {
        to_report(self, vcpu, time)
    }
}

/// See [`SeaExit::to_report`].
pub fn to_report(exit: &SeaExit, vcpu: u32, time: ReportTime) -> ErrorReport {
    ErrorReport {
        cause: ErrorCause::SyncConsumption {
            vcpu,
            origin: SyncOrigin::ArmSeaExit,
            abort: exit.class.kind(),
            granule: exit
                .gpa
                .and_then(|gpa| GpaGranule::containing(gpa, MIN_GRANULE_SHIFT)),
            gva: exit.gva,
        },
        unix_time: time.unix_time,
        monotonic_ms: time.monotonic_ms,
    }
}

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of};
    use std::os::raw::c_char;

    use super::*;

    /// Fills a `kvm_run` the way the kernel does for this exit.
    fn kernel_run(flags: u64, esr: u64, gva: u64, gpa: u64) -> kvm_run {
        let mut run = kvm_run {
            exit_reason: KVM_EXIT_ARM_SEA,
            ..Default::default()
        };
        let mut pad = [0 as c_char; 256];
        for (i, w) in [flags, esr, gva, gpa].iter().enumerate() {
            for (j, b) in w.to_ne_bytes().iter().enumerate() {
                pad[i * 8 + j] = c_char::from_ne_bytes([*b]);
            }
        }
        // Some garbage after the struct, as left by an earlier exit.
        pad[32] = 0x55;
        run.__bindgen_anon_1.padding = pad;
        run
    }

    const TIME: ReportTime = ReportTime {
        unix_time: 1_800_000_000,
        monotonic_ms: 42,
    };

    #[test]
    fn layout_matches_kvm_run() {
        assert_eq!(
            offset_of!(kvm_run, __bindgen_anon_1),
            KVM_RUN_EXIT_UNION_OFFSET
        );
        assert_eq!(offset_of!(kvm_run, exit_reason), 8);
        assert_eq!(size_of::<KvmArmSeaExit>(), 32);
        assert_eq!(offset_of!(KvmArmSeaExit, flags), 0);
        assert_eq!(offset_of!(KvmArmSeaExit, esr), 8);
        assert_eq!(offset_of!(KvmArmSeaExit, gva), 16);
        assert_eq!(offset_of!(KvmArmSeaExit, gpa), 24);
        let run = kvm_run::default();
        assert!(size_of_val(&run.__bindgen_anon_1) >= size_of::<KvmArmSeaExit>());
    }

    #[test]
    fn data_abort_with_gpa_and_gva() {
        // DABT_LOW, IL, FSC 0x10, WnR=0, FnV=0 (as in the kernel selftest).
        let esr = 0x9200_0010;
        let run = kernel_run(
            KVM_EXIT_ARM_SEA_FLAG_GPA_VALID,
            esr,
            0xffff_0000_1234_5678,
            0x8012_3678,
        );
        let exit = SeaExit::from_kvm_run(&run).unwrap();
        assert_eq!(exit.class, AbortClass::DataLowerEl);
        assert_eq!(exit.esr.ec(), 0x24);
        assert!(exit.esr.il());
        assert!(!exit.esr.fnv());
        assert!(!exit.esr.wnr());
        assert_eq!(exit.esr.fsc(), FSC_SEA);
        assert_eq!(exit.gva, Some(0xffff_0000_1234_5678));
        assert_eq!(exit.gpa, Some(0x8012_3678));
        let report = exit.to_report(3, TIME);
        assert_eq!(
            report.cause,
            ErrorCause::SyncConsumption {
                vcpu: 3,
                origin: SyncOrigin::ArmSeaExit,
                abort: AbortKind::Data,
                granule: GpaGranule::containing(0x8012_3000, 12),
                gva: Some(0xffff_0000_1234_5678),
            }
        );
        assert_eq!(report.unix_time, 1_800_000_000);
        assert_eq!(report.monotonic_ms, 42);
    }

    #[test]
    fn fnv_set_hides_gva_and_no_flag_hides_gpa() {
        // FnV (bit 10), WnR (bit 6), CM (bit 8), SET=0b10, EA.
        let esr = 0x9200_0010 | 1 << 10 | 1 << 6 | 1 << 8 | 0b10 << 11 | 1 << 9;
        let run = kernel_run(0, esr, 0xdead_beef, 0xdead_beef);
        let exit = SeaExit::from_kvm_run(&run).unwrap();
        assert_eq!(exit.gva, None);
        assert_eq!(exit.gpa, None);
        assert!(exit.esr.fnv() && exit.esr.wnr() && exit.esr.cm() && exit.esr.ea());
        assert_eq!(exit.esr.set(), 0b10);
        assert_eq!(exit.esr.iss(), (esr & 0x1ff_ffff) as u32);
        let report = exit.to_report(0, TIME);
        let ErrorCause::SyncConsumption { granule, gva, .. } = report.cause else {
            panic!("wrong cause");
        };
        assert_eq!((granule, gva), (None, None));
    }

    #[test]
    fn gpa_without_gva() {
        let esr = 0x9200_0010 | 1 << 10;
        let run = kernel_run(KVM_EXIT_ARM_SEA_FLAG_GPA_VALID, esr, 0, 0x4000_1000);
        let exit = SeaExit::from_kvm_run(&run).unwrap();
        assert_eq!((exit.gva, exit.gpa), (None, Some(0x4000_1000)));
    }

    #[test]
    fn instruction_abort() {
        // IABT_LOW, IL, FSC 0x10; bits 6 and 8 are RES0 for IABT.
        let esr = 0x8200_0010 | 1 << 6 | 1 << 8;
        let run = kernel_run(KVM_EXIT_ARM_SEA_FLAG_GPA_VALID, esr, 0x40_0000, 0x8040_0000);
        let exit = SeaExit::from_kvm_run(&run).unwrap();
        assert_eq!(exit.class, AbortClass::InstructionLowerEl);
        assert!(exit.esr.is_instruction_abort());
        assert!(!exit.esr.wnr() && !exit.esr.cm());
        let ErrorCause::SyncConsumption { abort, .. } = exit.to_report(1, TIME).cause else {
            panic!("wrong cause");
        };
        assert_eq!(abort, AbortKind::Instruction);
        // Same-EL classes decode too (nested guests).
        let e = decode(&KvmArmSeaExit {
            esr: 0x8600_0010,
            ..Default::default()
        });
        assert_eq!(e.unwrap().class, AbortClass::InstructionSameEl);
        let e = decode(&KvmArmSeaExit {
            esr: 0x9600_0010,
            ..Default::default()
        });
        assert_eq!(e.unwrap().class, AbortClass::DataSameEl);
    }

    #[test]
    fn ttw_and_ecc_classes_accepted() {
        for fsc in [0x10, 0x12, 0x13, 0x14, 0x17, 0x18, 0x1b, 0x1c, 0x1f] {
            let raw = KvmArmSeaExit {
                esr: 0x9200_0000 | fsc,
                ..Default::default()
            };
            assert!(decode(&raw).is_ok(), "fsc {fsc:#x}");
        }
    }

    #[test]
    fn rejects_what_kvm_never_produces() {
        // SVC64 exception class.
        let run = kernel_run(0, 0x5600_0000, 0, 0);
        assert_eq!(
            SeaExit::from_kvm_run(&run),
            Err(SeaExitError::NotAnAbort {
                ec: 0x15,
                esr: 0x5600_0000
            })
        );
        // Unknown flag bit.
        let run = kernel_run(0b10, 0x9200_0010, 0, 0);
        assert_eq!(
            SeaExit::from_kvm_run(&run),
            Err(SeaExitError::UnknownFlags { flags: 0b10 })
        );
        // Translation fault, level 3 (0x07); tag check fault (0x11).
        for fsc in [0x07u8, 0x11, 0x19, 0x1a, 0x21] {
            let esr = 0x9200_0000 | u64::from(fsc);
            let run = kernel_run(1, esr, 0, 0);
            assert_eq!(
                SeaExit::from_kvm_run(&run),
                Err(SeaExitError::NotExternalAbort { fsc, esr })
            );
        }
        // Another exit.
        let mut run = kernel_run(1, 0x9200_0010, 0, 0);
        run.exit_reason = 6;
        assert_eq!(
            SeaExit::from_kvm_run(&run),
            Err(SeaExitError::WrongExitReason(6))
        );
        assert_eq!(
            SeaExitError::NotAnAbort {
                ec: 0x15,
                esr: 0x5600_0000
            }
            .to_string(),
            "ESR 0x56000000: exception class 0x15 is not an instruction or data abort"
        );
    }

    #[cfg(target_arch = "aarch64")]
    use crate::abort_inject;
    #[cfg(target_arch = "aarch64")]
    use crate::caps::RasCaps;

    /// Compile check of the vCPU-loop pattern (borrow of `VcpuExit` ends
    /// before re-borrowing the vCPU); never run.
    #[allow(dead_code)]
    fn vcpu_loop_pattern(vcpu: &mut kvm_ioctls::VcpuFd) -> Option<SeaExit> {
        match vcpu.run() {
            Ok(kvm_ioctls::VcpuExit::Unsupported(KVM_EXIT_ARM_SEA)) => {
                let exit = SeaExit::from_vcpu(vcpu).ok()?;
                #[cfg(target_arch = "aarch64")]
                {
                    let caps = RasCaps::default();
                    let method = abort_inject::plan(exit.class.kind(), exit.gva, &caps, false);
                    abort_inject::inject(vcpu, method).ok()?;
                }
                Some(exit)
            }
            _ => None,
        }
    }

    #[test]
    fn read_raw_round_trips() {
        let run = kernel_run(1, 2, 3, 4);
        assert_eq!(
            read_raw(&run),
            KvmArmSeaExit {
                flags: 1,
                esr: 2,
                gva: 3,
                gpa: 4
            }
        );
    }
}
