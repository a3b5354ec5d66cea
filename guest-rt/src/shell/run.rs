//! The shell loop of the boot core: bytes from the UART receive ring into the line editor,
//! submitted lines into the command tables; WFI while there is no input.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::console::Console;
use crate::shell::line::{Event, LineEditor};
use crate::shell::Commands;
use crate::{sync, uart};

/// Longest command line accepted.
pub const LINE_MAX: usize = 512;

/// Submitted lines rejected by the editor (too long or not UTF-8).
static REJECTED: AtomicU64 = AtomicU64::new(0);

/// Lines the shell rejected since boot (too long or not UTF-8).
pub fn rejected_lines() -> u64 {
    REJECTED.load(Ordering::Relaxed)
}

/// Runs the shell forever with `prompt`.
pub fn run(prompt: &str, commands: &'static Commands) -> ! {
    let mut editor = LineEditor::<LINE_MAX>::new();
    crate::print!("{prompt}");
    loop {
        while let Some(b) = uart::get_byte() {
            match editor.feed(b, &mut Console) {
                Event::Line(line) => {
                    commands.execute(line, &mut Console);
                    crate::print!("{prompt}");
                }
                Event::Rejected => {
                    REJECTED.fetch_add(1, Ordering::Relaxed);
                    crate::print!("{prompt}");
                }
                Event::None => {}
            }
        }
        // Sleep until an interrupt, without missing one that lands between the check and WFI:
        // WFI wakes on a pending IRQ even while masked, and the handler runs after the unmask.
        let daif = sync::irq_save();
        if !uart::has_input() {
            aarch64_cpu::asm::wfi();
        }
        sync::irq_restore(daif);
    }
}
