//! The GICv3 list registers of this core's virtual CPU interface.

use aarch64_cpu::registers::*;
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::LocalRegisterCopy;

use super::sysreg::ICH_ELRSR_EL2;

/// A list-register value with the field layout of ICH_LR<n>_EL2.
pub type Lr = LocalRegisterCopy<u64, ICH_LR0_EL2::Register>;

/// Number of implemented list registers.
pub fn count() -> usize {
    ICH_VTR_EL2.read(ICH_VTR_EL2::ListRegs) as usize + 1
}

/// Reads list register `n`.
pub fn read(n: usize) -> Lr {
    Lr::new(match n {
        0 => ICH_LR0_EL2.get(),
        1 => ICH_LR1_EL2.get(),
        2 => ICH_LR2_EL2.get(),
        3 => ICH_LR3_EL2.get(),
        4 => ICH_LR4_EL2.get(),
        5 => ICH_LR5_EL2.get(),
        6 => ICH_LR6_EL2.get(),
        7 => ICH_LR7_EL2.get(),
        8 => ICH_LR8_EL2.get(),
        9 => ICH_LR9_EL2.get(),
        10 => ICH_LR10_EL2.get(),
        11 => ICH_LR11_EL2.get(),
        12 => ICH_LR12_EL2.get(),
        13 => ICH_LR13_EL2.get(),
        14 => ICH_LR14_EL2.get(),
        _ => ICH_LR15_EL2.get(),
    })
}

/// Writes list register `n`.
pub fn write(n: usize, v: Lr) {
    let v = v.get();
    match n {
        0 => ICH_LR0_EL2.set(v),
        1 => ICH_LR1_EL2.set(v),
        2 => ICH_LR2_EL2.set(v),
        3 => ICH_LR3_EL2.set(v),
        4 => ICH_LR4_EL2.set(v),
        5 => ICH_LR5_EL2.set(v),
        6 => ICH_LR6_EL2.set(v),
        7 => ICH_LR7_EL2.set(v),
        8 => ICH_LR8_EL2.set(v),
        9 => ICH_LR9_EL2.set(v),
        10 => ICH_LR10_EL2.set(v),
        11 => ICH_LR11_EL2.set(v),
        12 => ICH_LR12_EL2.set(v),
        13 => ICH_LR13_EL2.set(v),
        14 => ICH_LR14_EL2.set(v),
        _ => ICH_LR15_EL2.set(v),
    }
}

/// Clears the virtual CPU interface's active priorities (ICH_AP0Rn/AP1Rn_EL2). A vCPU stopped
/// inside an interrupt handler leaves its priority active there; kept, it would mask every
/// interrupt of equal or lower priority in the VM's next run.
pub fn clear_active_priorities() {
    let pre_bits = ICH_VTR_EL2.read(ICH_VTR_EL2::PREbits) + 1;
    ICH_AP0R0_EL2.set(0);
    ICH_AP1R0_EL2.set(0);
    if pre_bits >= 6 {
        ICH_AP0R1_EL2.set(0);
        ICH_AP1R1_EL2.set(0);
    }
    if pre_bits >= 7 {
        ICH_AP0R2_EL2.set(0);
        ICH_AP1R2_EL2.set(0);
        ICH_AP0R3_EL2.set(0);
        ICH_AP1R3_EL2.set(0);
    }
}

/// Bitmap of list registers holding no interrupt.
pub fn free_mask() -> u64 {
    ICH_ELRSR_EL2.get()
}
