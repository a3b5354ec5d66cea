//! Exception syndromes (`ESR_ELx`), decoded once for the hypervisor (ESR_EL2: which exit a
//! guest took, and the one-line fault report that stops a VM) and for the guests (ESR_EL1:
//! their fatal-exception reports and the undefined-instruction probes).

use core::fmt;

/// Exception classes (`ESR_ELx.EC`) SIS handles or names.
pub mod ec {
    /// Unknown reason: an UNDEFINED instruction.
    pub const UNKNOWN: u64 = 0x00;
    /// WFI/WFE trapped.
    pub const WFX: u64 = 0x01;
    /// SIMD/FP access trapped.
    pub const FP_ACCESS: u64 = 0x07;
    /// Illegal execution state.
    pub const ILLEGAL_STATE: u64 = 0x0E;
    /// SVC from AArch64.
    pub const SVC64: u64 = 0x15;
    /// HVC from AArch64.
    pub const HVC64: u64 = 0x16;
    /// SMC from AArch64.
    pub const SMC64: u64 = 0x17;
    /// MSR/MRS/system instruction trapped.
    pub const SYSREG: u64 = 0x18;
    /// Instruction abort from a lower EL.
    pub const IABT_LOW: u64 = 0x20;
    /// Instruction abort without a change of EL.
    pub const IABT_CUR: u64 = 0x21;
    /// PC alignment fault.
    pub const PC_ALIGN: u64 = 0x22;
    /// Data abort from a lower EL.
    pub const DABT_LOW: u64 = 0x24;
    /// Data abort without a change of EL.
    pub const DABT_CUR: u64 = 0x25;
    /// SP alignment fault.
    pub const SP_ALIGN: u64 = 0x26;
    /// Floating-point exception.
    pub const FP_EXC: u64 = 0x2C;
    /// SError.
    pub const SERROR: u64 = 0x2F;
    /// BRK instruction.
    pub const BRK64: u64 = 0x3C;
}

/// `ESR_ELx.IL`: the trapped instruction was 32 bits.
pub const IL: u64 = 1 << 25;

/// A syndrome value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Esr(pub u64);

/// An abort's fault status (`ISS.xFSC`) in words, with the translation level where it applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// `translation fault`, `permission fault`, ...
    pub kind: &'static str,
    /// The translation table level, for address size, translation, access flag and
    /// permission faults.
    pub level: Option<u64>,
}

impl Esr {
    /// Exception class.
    pub fn ec(self) -> u64 {
        (self.0 >> 26) & 0x3F
    }

    /// Instruction-specific syndrome.
    pub fn iss(self) -> u64 {
        self.0 & 0x1FF_FFFF
    }

    /// 32-bit instruction (IL).
    pub fn il32(self) -> bool {
        self.0 & IL != 0
    }

    /// A name for the exception class.
    pub fn class_name(self) -> &'static str {
        match self.ec() {
            ec::UNKNOWN => "unknown reason",
            ec::WFX => "WFI/WFE",
            ec::FP_ACCESS => "SIMD/FP access",
            ec::ILLEGAL_STATE => "illegal execution state",
            ec::SVC64 => "SVC",
            ec::HVC64 => "HVC",
            ec::SMC64 => "SMC",
            ec::SYSREG => "system register access",
            ec::IABT_LOW | ec::IABT_CUR => "instruction abort",
            ec::PC_ALIGN => "PC alignment fault",
            ec::DABT_LOW | ec::DABT_CUR => "data abort",
            ec::SP_ALIGN => "SP alignment fault",
            ec::FP_EXC => "floating-point exception",
            ec::SERROR => "SError",
            ec::BRK64 => "BRK",
            _ => "other",
        }
    }

    /// Whether this is a data abort (from a lower EL or not).
    pub fn is_data_abort(self) -> bool {
        matches!(self.ec(), ec::DABT_LOW | ec::DABT_CUR)
    }

    /// Whether this is an instruction or data abort.
    pub fn is_abort(self) -> bool {
        self.is_data_abort() || matches!(self.ec(), ec::IABT_LOW | ec::IABT_CUR)
    }

    /// For aborts: the fault status.
    pub fn fault(self) -> Option<Fault> {
        if !self.is_abort() {
            return None;
        }
        let fsc = self.0 & 0x3F;
        let level = Some(fsc & 0x3);
        let (kind, level) = match fsc >> 2 {
            0b0000 => ("address size fault", level),
            0b0001 => ("translation fault", level),
            0b0010 => ("access flag fault", level),
            0b0011 => ("permission fault", level),
            _ if fsc == 0x10 => ("synchronous external abort", None),
            _ if fsc == 0x21 => ("alignment fault", None),
            _ => ("other fault", None),
        };
        Some(Fault { kind, level })
    }

    /// For data aborts: whether it was a write (`ISS.WnR`, valid without `ISV`).
    pub fn is_write(self) -> bool {
        self.is_data_abort() && self.0 & (1 << 6) != 0
    }

    /// For data aborts with a valid syndrome (`ISV`): the access.
    pub fn data_access(self) -> Option<DataAccess> {
        let iss = self.iss();
        if !self.is_data_abort() || iss & (1 << 24) == 0 {
            return None;
        }
        Some(DataAccess {
            size: 1 << ((iss >> 22) & 3),
            sign_extend: iss & (1 << 21) != 0,
            reg: ((iss >> 16) & 0x1F) as usize,
            sf: iss & (1 << 15) != 0,
            write: iss & (1 << 6) != 0,
        })
    }

    /// For trapped MSR/MRS: the register and direction.
    pub fn sysreg(self) -> Option<SysRegAccess> {
        if self.ec() != ec::SYSREG {
            return None;
        }
        let iss = self.iss();
        Some(SysRegAccess {
            op0: (iss >> 20) & 3,
            op2: (iss >> 17) & 7,
            op1: (iss >> 14) & 7,
            crn: (iss >> 10) & 0xF,
            crm: (iss >> 1) & 0xF,
            reg: ((iss >> 5) & 0x1F) as usize,
            read: iss & 1 != 0,
        })
    }
}

/// A trapped load or store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataAccess {
    /// Access size in bytes.
    pub size: u64,
    /// Sign-extend a load.
    pub sign_extend: bool,
    /// Transfer register (31 = zero register).
    pub reg: usize,
    /// 64-bit register.
    pub sf: bool,
    /// Store.
    pub write: bool,
}

/// A trapped MSR/MRS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegAccess {
    /// op0.
    pub op0: u64,
    /// op1.
    pub op1: u64,
    /// CRn.
    pub crn: u64,
    /// CRm.
    pub crm: u64,
    /// op2.
    pub op2: u64,
    /// Transfer register.
    pub reg: usize,
    /// MRS (read) rather than MSR.
    pub read: bool,
}

impl SysRegAccess {
    /// Whether this is `ICC_SGI1R_EL1`.
    pub fn is_icc_sgi1r(&self) -> bool {
        (self.op0, self.op1, self.crn, self.crm, self.op2) == crate::icc::SGI1R_ENCODING
    }
}

/// `ESR 0x93c88005: data abort, translation fault level 1, read`.
impl fmt::Display for Esr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ESR {:#010x}: {}", self.0, self.class_name())?;
        if let Some(fault) = self.fault() {
            write!(f, ", {}", fault.kind)?;
            if let Some(level) = fault.level {
                write!(f, " level {level}")?;
            }
            if self.is_data_abort() {
                f.write_str(if self.is_write() { ", write" } else { ", read" })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_stage2_read_fault() {
        // Data abort, IL, ISV, 64-bit LDR into x8, translation fault level 1.
        let esr = Esr((ec::DABT_LOW << 26)
            | (1 << 25)
            | (1 << 24)
            | (3 << 22)
            | (8 << 16)
            | (1 << 15)
            | 0x05);
        let a = esr.data_access().unwrap();
        assert_eq!(
            a,
            DataAccess {
                size: 8,
                sign_extend: false,
                reg: 8,
                sf: true,
                write: false
            }
        );
        assert_eq!(
            format!("{esr}"),
            "ESR 0x93c88005: data abort, translation fault level 1, read"
        );
    }

    #[test]
    fn write_without_syndrome() {
        let esr = Esr((ec::DABT_LOW << 26) | (1 << 6) | 0x0F);
        assert!(esr.data_access().is_none());
        assert!(esr.is_write());
        assert_eq!(esr.fault().unwrap().kind, "permission fault");
    }

    #[test]
    fn decodes_sgi1r_write() {
        let iss = (3 << 20) | (5 << 17) | (12 << 10) | (3 << 5) | (11 << 1);
        let esr = Esr((ec::SYSREG << 26) | (1 << 25) | iss);
        let s = esr.sysreg().unwrap();
        assert!(s.is_icc_sgi1r());
        assert!(!s.read);
        assert_eq!(s.reg, 3);
        assert_eq!(esr.class_name(), "system register access");
    }

    #[test]
    fn decodes_translation_fault_of_a_load() {
        let esr = Esr(0x9600_0004); // data abort, same EL, level-0 translation fault, read
        assert_eq!(esr.ec(), 0x25);
        assert_eq!(esr.class_name(), "data abort");
        assert_eq!(
            esr.fault(),
            Some(Fault {
                kind: "translation fault",
                level: Some(0)
            })
        );
        assert!(!esr.is_write());
    }

    #[test]
    fn decodes_external_abort_and_write() {
        let fault = |v| Esr(v).fault().map(|f| (f.kind, f.level));
        assert_eq!(
            fault(0x9600_0010),
            Some(("synchronous external abort", None))
        );
        assert!(Esr(0x9600_0047).is_write());
        assert_eq!(fault(0x9600_0047), Some(("translation fault", Some(3))));
        assert_eq!(fault(0x9600_0021), Some(("alignment fault", None)));
        assert_eq!(
            format!("{}", Esr(0x9600_0010)),
            "ESR 0x96000010: data abort, synchronous external abort, read"
        );
    }

    #[test]
    fn non_aborts_have_no_fault_status() {
        let svc = Esr(ec::SVC64 << 26);
        assert_eq!(svc.fault(), None);
        assert_eq!(svc.class_name(), "SVC");
        assert!(!Esr(svc.0 | (1 << 6)).is_write());
        assert_eq!(format!("{svc}"), "ESR 0x54000000: SVC");
    }
}
