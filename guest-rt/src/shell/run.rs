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
    run_with(prompt, commands, || false, || false)
}

/// Runs the shell forever with `prompt`, interleaved with other work: whenever no input is
/// waiting, `work()` runs one bounded unit (it returns whether it did anything; if so, input
/// is looked at again at once), so a keystroke waits at most one unit. With neither input nor
/// work done, the core sleeps in WFI unless `pending()` says work is waiting.
pub fn run_with(
    prompt: &str,
    commands: &'static Commands,
    mut work: impl FnMut() -> bool,
    pending: impl Fn() -> bool,
) -> ! {
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
        if work() {
            continue;
        }
        // Sleep until an interrupt, without missing one that lands between the check and WFI:
        // WFI wakes on a pending IRQ even while masked, and the handler runs after the unmask.
        let daif = sync::irq_save();
        if !uart::has_input() && !pending() {
            aarch64_cpu::asm::wfi();
        }
        sync::irq_restore(daif);
    }
}
