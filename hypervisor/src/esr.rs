//! Decoding of ESR_EL2 syndromes for exit handling and for the one-line fault reports.

use core::fmt;

/// Exception classes the hypervisor handles or names.
pub mod ec {
    /// Unknown reason.
    pub const UNKNOWN: u64 = 0x00;
    /// WFI/WFE.
    pub const WFX: u64 = 0x01;
    /// HVC from AArch64.
    pub const HVC64: u64 = 0x16;
    /// SMC from AArch64.
    pub const SMC64: u64 = 0x17;
    /// MSR/MRS/system instruction.
    pub const SYSREG: u64 = 0x18;
    /// Instruction abort from a lower EL.
    pub const IABT_LOW: u64 = 0x20;
    /// PC alignment fault.
    pub const PC_ALIGN: u64 = 0x22;
    /// Data abort from a lower EL.
    pub const DABT_LOW: u64 = 0x24;
    /// SP alignment fault.
    pub const SP_ALIGN: u64 = 0x26;
    /// SError.
    pub const SERROR: u64 = 0x2F;
    /// Breakpoint / BRK.
    pub const BRK64: u64 = 0x3C;
}

/// A decoded syndrome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Esr(pub u64);

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
        self.0 & (1 << 25) != 0
    }

    /// A name for the exception class.
    pub fn class_name(self) -> &'static str {
        match self.ec() {
            ec::UNKNOWN => "unknown/undefined instruction",
            ec::WFX => "WFI/WFE",
            ec::HVC64 => "HVC",
            ec::SMC64 => "SMC",
            ec::SYSREG => "system register access",
            ec::IABT_LOW => "instruction abort",
            ec::PC_ALIGN => "PC alignment fault",
            ec::DABT_LOW => "data abort",
            ec::SP_ALIGN => "SP alignment fault",
            ec::SERROR => "SError",
            ec::BRK64 => "BRK",
            _ => "other trap",
        }
    }

    /// For aborts: the fault status code name.
    pub fn fault_name(self) -> &'static str {
        let fsc = self.iss() & 0x3F;
        match fsc {
            0x04..=0x07 => "translation fault",
            0x09..=0x0B => "access flag fault",
            0x0D..=0x0F => "permission fault",
            0x10 => "external abort",
            0x21 => "alignment fault",
            _ => "fault",
        }
    }

    /// For aborts: the table level of the fault.
    pub fn fault_level(self) -> u64 {
        self.iss() & 0x3
    }

    /// For data aborts: decoded access (when the syndrome is valid).
    pub fn data_access(self) -> Option<DataAccess> {
        if self.ec() != ec::DABT_LOW {
            return None;
        }
        let iss = self.iss();
        if iss & (1 << 24) == 0 {
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

    /// For data aborts: whether it was a write (valid even without ISV).
    pub fn is_write(self) -> bool {
        self.iss() & (1 << 6) != 0
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
    /// Whether this is `ICC_SGI1R_EL1` (S3_0_C12_C11_5).
    pub fn is_icc_sgi1r(&self) -> bool {
        (self.op0, self.op1, self.crn, self.crm, self.op2) == (3, 0, 12, 11, 5)
    }
}

impl fmt::Display for Esr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ESR {:#010x}: {}", self.0, self.class_name())?;
        if matches!(self.ec(), ec::DABT_LOW | ec::IABT_LOW) {
            write!(f, ", {} level {}", self.fault_name(), self.fault_level())?;
            if self.ec() == ec::DABT_LOW {
                f.write_str(if self.is_write() { ", write" } else { ", read" })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::format;

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
        assert_eq!(esr.fault_name(), "permission fault");
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
}
