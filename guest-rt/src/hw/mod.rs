//! The hardware edge: everything that only exists on `aarch64-unknown-none`.

mod boot;
pub mod commands;
pub mod console;
pub mod diag;
mod exceptions;
pub mod gic;
pub mod heap;
pub mod hypercall;
pub mod irq;
mod mmio;
mod mmu;
pub mod probe_cmds;
pub mod probes;
pub mod psci;
pub mod smp;
pub mod sync;
pub mod timer;
pub mod uart;

pub use boot::{boot_info, image_end, STACK_SIZE};
pub use exceptions::TrapFrame;

/// Stops this core for good: IRQs masked, WFI forever.
pub fn halt_core() -> ! {
    sync::irq_save();
    loop {
        aarch64_cpu::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    console::emergency(format_args!(
        "\n*** PANIC on core {}: {}\n*** core halted\n",
        smp::core_id(),
        info
    ));
    halt_core()
}
