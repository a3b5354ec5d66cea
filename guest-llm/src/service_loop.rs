//! The boot core's loop: the `llm>` shell and the scheduler loop interleaved. Input bytes go
//! to the line editor and submitted lines to the command tables (as `guest_rt::shell::run`
//! does); whenever no input is waiting, one scheduler step runs ([`service::poll`]), so
//! background and ring jobs progress while the prompt waits, and a keystroke waits at most one
//! bounded step. With neither input nor runnable work the core sleeps in WFI until the next
//! interrupt (timer tick, UART, doorbell).

use core::sync::atomic::{AtomicU64, Ordering};

use guest_rt::console::Console;
use guest_rt::shell::line::{Event, LineEditor};
use guest_rt::shell::{Commands, LINE_MAX};
use guest_rt::{sync, uart};

use crate::service;

/// Lines the editor rejected (too long or not UTF-8).
static REJECTED: AtomicU64 = AtomicU64::new(0);

/// Lines this loop rejected since boot.
pub fn rejected_lines() -> u64 {
    REJECTED.load(Ordering::Relaxed)
}

/// Runs the shell and the scheduler forever.
pub fn run(prompt: &str, commands: &'static Commands) -> ! {
    service::init();
    // Ring requests go to the service; the ring endpoint's thread-context upkeep (re-attach,
    // queued sends, left-over requests) and the ring's control requests run on every pass.
    crate::service_ring::install();
    service::set_poll_hook(Some(&(crate::service_ring::poll as fn())));
    let mut editor = LineEditor::<LINE_MAX>::new();
    guest_rt::print!("{prompt}");
    loop {
        while let Some(b) = uart::get_byte() {
            match editor.feed(b, &mut Console) {
                Event::Line(line) => {
                    commands.execute(line, &mut Console);
                    guest_rt::print!("{prompt}");
                }
                Event::Rejected => {
                    REJECTED.fetch_add(1, Ordering::Relaxed);
                    guest_rt::print!("{prompt}");
                }
                Event::None => {}
            }
        }
        if service::poll() {
            continue;
        }
        // Sleep without losing a wake-up: WFI returns on a pending IRQ even while masked.
        let daif = sync::irq_save();
        if !uart::has_input() && !service::inbox_pending() {
            aarch64_cpu::asm::wfi();
        }
        sync::irq_restore(daif);
    }
}
