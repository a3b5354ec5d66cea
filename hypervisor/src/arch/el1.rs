//! A vCPU's architectural state at start: every EL1 register a guest can see, FP/SIMD, the PMU,
//! the debug registers and the virtual CPU interface are set to known values before the vCPU
//! enters its VM (VM start, restart and PSCI `CPU_ON`), so nothing of a previous run of this
//! core is visible to the next. Each core belongs to one VM and the hypervisor does not switch
//! EL1 state, so resetting at start is all the separation needed.

use aarch64_cpu::registers::*;
use tock_registers::interfaces::{Readable, Writeable};

use super::sysreg::{
    MDCCINT_EL1, PMCCFILTR_EL0, PMCNTENCLR_EL0, PMCR, PMCR_EL0, PMINTENCLR_EL1, PMOVSCLR_EL0,
    PMSELR_EL0, PMUSERENR_EL0, PMXEVCNTR_EL0, PMXEVTYPER_EL0,
};

/// SCTLR_EL1 reset value: MMU, alignment check and caches off; RES1 bits set.
pub const SCTLR_EL1_RESET: u64 = 0x30D0_0800;

/// Resets this core's EL1, FP/SIMD, PMU, debug and virtual CPU-interface state.
pub fn reset() {
    system_registers();
    fp_simd();
    pmu();
    debug();
    vgic_cpu_interface();
}

fn system_registers() {
    SCTLR_EL1.set(SCTLR_EL1_RESET);
    CPACR_EL1.set(0);
    TTBR0_EL1.set(0);
    TTBR1_EL1.set(0);
    TCR_EL1.set(0);
    MAIR_EL1.set(0);
    AMAIR_EL1.set(0);
    VBAR_EL1.set(0);
    CONTEXTIDR_EL1.set(0);
    TPIDR_EL0.set(0);
    TPIDR_EL1.set(0);
    TPIDRRO_EL0.set(0);
    SP_EL0.set(0);
    SP_EL1.set(0);
    ELR_EL1.set(0);
    SPSR_EL1.set(0);
    ESR_EL1.set(0);
    FAR_EL1.set(0);
    AFSR0_EL1.set(0);
    AFSR1_EL1.set(0);
    PAR_EL1.set(0);
    CSSELR_EL1.set(0);
    CNTKCTL_EL1.set(0);
    CNTV_CTL_EL0.set(0);
    CNTV_CVAL_EL0.set(0);
    CNTP_CTL_EL0.set(0);
    CNTP_CVAL_EL0.set(0);
}

/// Zeroes V0-V31, FPCR and FPSR.
fn fp_simd() {
    // SAFETY: the hypervisor is built soft-float and never keeps values in SIMD/FP registers,
    // so overwriting them (without declaring them: this target cannot name them as operands)
    // changes nothing it relies on; CPTR_EL2.TFP is clear, so EL2 may execute these. The
    // directives only let the assembler accept the instructions.
    unsafe {
        core::arch::asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "movi v0.2d, #0",
            "movi v1.2d, #0",
            "movi v2.2d, #0",
            "movi v3.2d, #0",
            "movi v4.2d, #0",
            "movi v5.2d, #0",
            "movi v6.2d, #0",
            "movi v7.2d, #0",
            "movi v8.2d, #0",
            "movi v9.2d, #0",
            "movi v10.2d, #0",
            "movi v11.2d, #0",
            "movi v12.2d, #0",
            "movi v13.2d, #0",
            "movi v14.2d, #0",
            "movi v15.2d, #0",
            "movi v16.2d, #0",
            "movi v17.2d, #0",
            "movi v18.2d, #0",
            "movi v19.2d, #0",
            "movi v20.2d, #0",
            "movi v21.2d, #0",
            "movi v22.2d, #0",
            "movi v23.2d, #0",
            "movi v24.2d, #0",
            "movi v25.2d, #0",
            "movi v26.2d, #0",
            "movi v27.2d, #0",
            "movi v28.2d, #0",
            "movi v29.2d, #0",
            "movi v30.2d, #0",
            "movi v31.2d, #0",
            "msr fpcr, xzr",
            "msr fpsr, xzr",
            options(nomem, nostack, preserves_flags)
        );
    }
}

/// Counters stopped and zeroed, no overflow or interrupt state, no EL0 access. The guest cannot
/// reach any of it (MDCR_EL2.TPM traps every access); this only makes the state known.
fn pmu() {
    if ID_AA64DFR0_EL1.read(ID_AA64DFR0_EL1::PMUVer) == 0 {
        return;
    }
    let counters = PMCR_EL0.read(PMCR::N);
    PMCR_EL0.write(PMCR::C::SET + PMCR::P::SET);
    PMCNTENCLR_EL0.set(u64::from(u32::MAX));
    PMINTENCLR_EL1.set(u64::from(u32::MAX));
    PMOVSCLR_EL0.set(u64::from(u32::MAX));
    PMUSERENR_EL0.set(0);
    PMCCFILTR_EL0.set(0);
    for n in 0..counters {
        PMSELR_EL0.set(n);
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        PMXEVTYPER_EL0.set(0);
        PMXEVCNTR_EL0.set(0);
    }
    PMSELR_EL0.set(0);
}

macro_rules! write_indexed {
    ($n:expr, $value:expr, $($i:literal),*) => {
        match $n {
            $(
                // SAFETY: clears one breakpoint/watchpoint register pair at EL2 (the index is
                // below the count ID_AA64DFR0_EL1 reports); no memory is touched.
                $i => unsafe {
                    core::arch::asm!(
                        concat!("msr dbgbcr", $i, "_el1, {v}"),
                        concat!("msr dbgbvr", $i, "_el1, {v}"),
                        v = in(reg) $value, options(nomem, nostack, preserves_flags))
                },
            )*
            _ => {}
        }
    };
}

macro_rules! write_watch {
    ($n:expr, $value:expr, $($i:literal),*) => {
        match $n {
            $(
                // SAFETY: as for the breakpoints, for one watchpoint register pair.
                $i => unsafe {
                    core::arch::asm!(
                        concat!("msr dbgwcr", $i, "_el1, {v}"),
                        concat!("msr dbgwvr", $i, "_el1, {v}"),
                        v = in(reg) $value, options(nomem, nostack, preserves_flags))
                },
            )*
            _ => {}
        }
    };
}

/// Breakpoints and watchpoints disabled and cleared, no monitor debug, no debug-comms
/// interrupt. The guest cannot reach them (MDCR_EL2.TDA/TDOSA/TDRA trap every access).
fn debug() {
    MDSCR_EL1.set(0);
    MDCCINT_EL1.set(0);
    let breakpoints = ID_AA64DFR0_EL1.read(ID_AA64DFR0_EL1::BRPs) + 1;
    let watchpoints = ID_AA64DFR0_EL1.read(ID_AA64DFR0_EL1::WRPs) + 1;
    for n in 0..breakpoints {
        write_indexed!(n, 0u64, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    }
    for n in 0..watchpoints {
        write_watch!(n, 0u64, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    }
}

/// Virtual CPU interface: no priority mask or enables, no active priorities left from an
/// interrupt the previous run was handling when it stopped.
fn vgic_cpu_interface() {
    ICH_VMCR_EL2.set(0);
    // ICH_AP<n>R<m>_EL2 exist for m < 2^(PREbits + 1 - 5).
    let regs = 1u64 << (ICH_VTR_EL2.read(ICH_VTR_EL2::PREbits) + 1).saturating_sub(5);
    ICH_AP0R0_EL2.set(0);
    ICH_AP1R0_EL2.set(0);
    if regs > 1 {
        ICH_AP0R1_EL2.set(0);
        ICH_AP1R1_EL2.set(0);
    }
    if regs > 2 {
        ICH_AP0R2_EL2.set(0);
        ICH_AP1R2_EL2.set(0);
        ICH_AP0R3_EL2.set(0);
        ICH_AP1R3_EL2.set(0);
    }
}
