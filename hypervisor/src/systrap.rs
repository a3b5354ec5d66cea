//! Trapped system-register accesses from a guest: what each one gets, and how an Undefined
//! Instruction exception is delivered to the guest's EL1 (pure logic; `arch/mmio.rs` reads and
//! writes the registers).
//!
//! `HCR_EL2`, `MDCR_EL2` and `CPTR_EL2` (see `arch/vcpu.rs`) trap the PMU, debug, trace,
//! IMPLEMENTATION DEFINED registers, set/way cache maintenance and `ACTLR_EL1`. A VM has no PMU,
//! no self-hosted debug or trace and no access to the core's IMPDEF controls: like KVM for a VM
//! without a vPMU, such an access is UNDEFINED for the guest (it takes an Undefined Instruction
//! exception at its own EL1 and nothing in the hardware changes). Set/way maintenance operates on
//! the physical caches shared with the hypervisor and the other VM and has no meaning in a VM; it
//! is refused the same way (SIS guests clean by address). `ACTLR_EL1` is read-as-zero,
//! writes ignored: on Cortex-A72 all its bits are RES0.

use sis_regs::esr::{ec, SysRegAccess, IL};

/// What a trapped access gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `ICC_SGI1R_EL1` write: SGIs to the VM's own vCPUs.
    Sgi,
    /// Reads as zero, writes ignored.
    RazWi,
    /// An Undefined Instruction exception at the guest's EL1.
    Undefined(Class),
    /// Nothing the hypervisor expects to trap: the VM is stopped.
    Unhandled,
}

/// Groups of registers a VM does not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Performance monitors (`MDCR_EL2.TPM`, `TPMCR`).
    Pmu,
    /// Self-hosted debug (`MDCR_EL2.TDA`, `TDOSA`, `TDRA`).
    Debug,
    /// Trace unit (`CPTR_EL2.TTA`).
    Trace,
    /// IMPLEMENTATION DEFINED registers (`HCR_EL2.TIDCP`).
    ImpDef,
    /// Data-cache maintenance by set/way (`HCR_EL2.TSW`).
    SetWay,
}

impl Class {
    /// Name for the monitor.
    pub fn name(self) -> &'static str {
        match self {
            Class::Pmu => "PMU",
            Class::Debug => "debug",
            Class::Trace => "trace",
            Class::ImpDef => "IMPDEF",
            Class::SetWay => "set/way",
        }
    }
}

/// What a trapped MSR/MRS/SYS instruction gets.
pub fn classify(s: &SysRegAccess) -> Action {
    let enc = (s.op0, s.op1, s.crn, s.crm, s.op2);
    match enc {
        (3, 0, 12, 11, 5) if !s.read => Action::Sgi,
        // ACTLR_EL1.
        (3, 0, 1, 0, 1) => Action::RazWi,
        // PMCR_EL0 .. PMOVSSET_EL0 (CRm 12-14), PMEVCNTR<n>_EL0, PMEVTYPER<n>_EL0, PMCCFILTR_EL0.
        (3, 3, 9, 12..=14, _) | (3, 3, 14, 8..=15, _) => Action::Undefined(Class::Pmu),
        // PMINTENSET_EL1, PMINTENCLR_EL1, PMMIR_EL1.
        (3, 0, 9, 14, 1 | 2 | 6) => Action::Undefined(Class::Pmu),
        // Trace registers live in op0 = 2, op1 = 1; the rest of op0 = 2 is debug.
        (2, 1, _, _, _) => Action::Undefined(Class::Trace),
        (2, _, _, _, _) => Action::Undefined(Class::Debug),
        // IMPLEMENTATION DEFINED: op0 = 3, CRn = 11 or 15.
        (3, _, 11 | 15, _, _) => Action::Undefined(Class::ImpDef),
        // DC ISW, DC CSW, DC CISW.
        (1, 0, 7, 6 | 10 | 14, 2) => Action::Undefined(Class::SetWay),
        _ => Action::Unhandled,
    }
}

/// PSTATE / SPSR bits (AArch64).
mod pstate {
    /// N, Z, C, V.
    pub const NZCV: u64 = 0xF << 28;
    /// Data independent timing (kept across exception entry).
    pub const DIT: u64 = 1 << 24;
    /// Privileged access never.
    pub const PAN: u64 = 1 << 22;
    /// D, A, I, F masks.
    pub const DAIF: u64 = 0xF << 6;
    /// Execution state: 1 = AArch32.
    pub const NRW: u64 = 1 << 4;
    /// Exception level field M[3:2].
    pub const EL_SHIFT: u64 = 2;
    /// Stack pointer select M[0].
    pub const SP_ELX: u64 = 1;
    /// EL1 with SP_EL1.
    pub const EL1H: u64 = 0b0101;
}

/// Vector offsets from VBAR_EL1 for a synchronous exception (Arm ARM, "Exception vectors").
mod vector {
    /// From the current EL using SP_EL0.
    pub const CURRENT_SP0: u64 = 0x000;
    /// From the current EL using SP_ELx.
    pub const CURRENT_SPX: u64 = 0x200;
    /// From a lower EL in AArch64.
    pub const LOWER_A64: u64 = 0x400;
    /// From a lower EL in AArch32.
    pub const LOWER_A32: u64 = 0x600;
}

/// Register values for taking an exception to the guest's EL1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct El1Entry {
    /// ESR_EL1.
    pub esr_el1: u64,
    /// ELR_EL1: the preferred return address (the faulting instruction).
    pub elr_el1: u64,
    /// SPSR_EL1: the interrupted PSTATE.
    pub spsr_el1: u64,
    /// Where the guest resumes (new ELR_EL2): the vector.
    pub pc: u64,
    /// The PSTATE it resumes with (new SPSR_EL2).
    pub pstate: u64,
}

/// The entry into the guest's EL1 synchronous vector for an UNDEFINED instruction at `pc`
/// executed with PSTATE `spsr` (SPSR_EL2 at the trap). `il32`: the instruction was 32 bits
/// (ESR_EL2.IL); `set_pan`: the CPU has PAN and SCTLR_EL1.SPAN is 0. `None` if `spsr` is not a
/// state a guest can trap from (EL2 or EL3), which the caller treats as a fault.
pub fn undefined_entry(
    spsr: u64,
    pc: u64,
    vbar_el1: u64,
    il32: bool,
    set_pan: bool,
) -> Option<El1Entry> {
    let offset = if spsr & pstate::NRW != 0 {
        vector::LOWER_A32
    } else {
        match (spsr >> pstate::EL_SHIFT) & 0b11 {
            0 => vector::LOWER_A64,
            1 if spsr & pstate::SP_ELX != 0 => vector::CURRENT_SPX,
            1 => vector::CURRENT_SP0,
            _ => return None,
        }
    };
    let mut new = (spsr & (pstate::NZCV | pstate::DIT)) | pstate::DAIF | pstate::EL1H;
    if set_pan {
        new |= pstate::PAN;
    }
    Some(El1Entry {
        esr_el1: (ec::UNKNOWN << 26) | if il32 { IL } else { 0 },
        elr_el1: pc,
        spsr_el1: spsr,
        pc: (vbar_el1 & !0x7FF) + offset,
        pstate: new,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(op0: u64, op1: u64, crn: u64, crm: u64, op2: u64, read: bool) -> SysRegAccess {
        SysRegAccess {
            op0,
            op1,
            crn,
            crm,
            op2,
            reg: 0,
            read,
        }
    }

    #[test]
    fn classifies_trapped_registers() {
        let undef = |c| Action::Undefined(c);
        let cases = [
            (acc(3, 0, 12, 11, 5, false), Action::Sgi),
            (acc(3, 0, 12, 11, 5, true), Action::Unhandled),
            (acc(3, 0, 1, 0, 1, true), Action::RazWi),
            (acc(3, 0, 1, 0, 1, false), Action::RazWi),
            (acc(3, 3, 9, 12, 0, true), undef(Class::Pmu)), // PMCR_EL0
            (acc(3, 3, 9, 13, 0, true), undef(Class::Pmu)), // PMCCNTR_EL0
            (acc(3, 3, 9, 14, 0, true), undef(Class::Pmu)), // PMUSERENR_EL0
            (acc(3, 3, 14, 8, 0, false), undef(Class::Pmu)), // PMEVCNTR0_EL0
            (acc(3, 3, 14, 15, 7, false), undef(Class::Pmu)), // PMCCFILTR_EL0
            (acc(3, 0, 9, 14, 1, false), undef(Class::Pmu)), // PMINTENSET_EL1
            (acc(2, 0, 0, 2, 2, true), undef(Class::Debug)), // MDSCR_EL1
            (acc(2, 0, 0, 0, 4, false), undef(Class::Debug)), // DBGBVR0_EL1
            (acc(2, 0, 1, 0, 4, false), undef(Class::Debug)), // OSLAR_EL1
            (acc(2, 0, 1, 0, 0, true), undef(Class::Debug)), // MDRAR_EL1
            (acc(2, 3, 0, 1, 0, true), undef(Class::Debug)), // MDCCSR_EL0
            (acc(2, 1, 0, 2, 0, true), undef(Class::Trace)), // TRCPRGCTLR
            (acc(3, 1, 15, 2, 0, true), undef(Class::ImpDef)), // CPUACTLR_EL1
            (acc(3, 1, 11, 0, 2, false), undef(Class::ImpDef)), // L2CTLR_EL1
            (acc(1, 0, 7, 14, 2, false), undef(Class::SetWay)), // DC CISW
            (acc(1, 0, 7, 6, 2, false), undef(Class::SetWay)), // DC ISW
            (acc(1, 0, 7, 10, 2, false), undef(Class::SetWay)), // DC CSW
            (acc(1, 3, 7, 14, 1, false), Action::Unhandled), // DC CIVAC: not trapped
            (acc(3, 3, 14, 2, 1, false), Action::Unhandled), // CNTP_CTL_EL0: the timer
            (acc(3, 3, 14, 0, 1, true), Action::Unhandled), // CNTPCT_EL0
        ];
        for (a, want) in cases {
            assert_eq!(classify(&a), want, "{a:?}");
        }
    }

    #[test]
    fn undefined_from_el1h_enters_the_current_el_spx_vector() {
        // EL1h, IRQs unmasked, Z and C set.
        let spsr = 0x6000_0005;
        let e = undefined_entry(spsr, 0x4008_1234, 0x4008_0800, true, false).unwrap();
        assert_eq!(
            e,
            El1Entry {
                esr_el1: 0x0200_0000,
                elr_el1: 0x4008_1234,
                spsr_el1: spsr,
                pc: 0x4008_0A00,
                pstate: 0x6000_03C5,
            }
        );
    }

    #[test]
    fn vector_offsets_follow_the_source_state() {
        let vbar = 0x4008_0800;
        let pc = |spsr| undefined_entry(spsr, 0, vbar, true, false).map(|e| e.pc - vbar);
        assert_eq!(pc(0b0101), Some(0x200), "EL1h");
        assert_eq!(pc(0b0100), Some(0x000), "EL1t");
        assert_eq!(pc(0b0000), Some(0x400), "EL0 AArch64");
        assert_eq!(pc(0b1_0000), Some(0x600), "EL0 AArch32");
        assert_eq!(pc(0b1001), None, "EL2 is not a guest state");
        assert_eq!(pc(0b1101), None, "EL3 is not a guest state");
    }

    #[test]
    fn entry_masks_interrupts_and_keeps_only_flags_and_dit() {
        // SS (21), IL (20), SSBS (12), BTYPE (11:10) and PAN (22) set before the trap.
        let spsr = 0xF000_0000
            | (1 << 24)
            | (1 << 22)
            | (1 << 21)
            | (1 << 20)
            | (1 << 12)
            | (0b11 << 10)
            | 0b0101;
        let e = undefined_entry(spsr, 8, 0x7FF, false, false).unwrap();
        assert_eq!(e.pstate, 0xF000_0000 | (1 << 24) | 0x3C5);
        assert_eq!(e.esr_el1, 0, "16-bit instruction: IL clear");
        assert_eq!(e.pc, 0x200, "VBAR_EL1[10:0] are RES0");
        let e = undefined_entry(0b0101, 8, 0, true, true).unwrap();
        assert_eq!(
            e.pstate,
            (1 << 22) | 0x3C5,
            "PAN set on entry when SCTLR_EL1.SPAN = 0"
        );
    }
}
