//! `print!`/`println!` on the PL011, usable from any core and from interrupt handlers.

use core::fmt::{self, Write};

use super::sync::IrqMutex;
use super::uart;

/// Serialises whole `print!` calls across cores.
static LOCK: IrqMutex<()> = IrqMutex::new(());

/// Writes text to the UART, turning `\n` into CR LF. Callers hold [`LOCK`] or are panicking.
struct Raw;

impl Write for Raw {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                uart::put_byte(b'\r');
            }
            uart::put_byte(b);
        }
        Ok(())
    }
}

/// A `fmt::Write` handle on the console (each write call takes the lock once). Shell commands
/// print through this.
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let _g = LOCK.lock();
        Raw.write_str(s)
    }

    fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> fmt::Result {
        let _g = LOCK.lock();
        Raw.write_fmt(args)
    }
}

/// Writes `bytes` to the UART exactly as given (no CR LF translation), under the print lock.
/// For the isolation probes: what the hypervisor must make safe.
pub fn write_raw(bytes: &[u8]) {
    let _g = LOCK.lock();
    for &b in bytes {
        uart::put_byte(b);
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    let _ = Console.write_fmt(args);
}

/// Last-resort output for panics and fatal exceptions: waits a bounded time for the lock and
/// then writes anyway (the holder may be the very code that faulted).
pub(crate) fn emergency(args: fmt::Arguments<'_>) {
    for _ in 0..1_000_000 {
        if let Some(_g) = LOCK.try_lock() {
            let _ = Raw.write_fmt(args);
            return;
        }
        super::sync::spin_yield();
    }
    let _ = Raw.write_fmt(args);
}

/// Output before the MMU is on (boot core only, no other core running): no lock, since exclusive
/// accesses need the MMU.
pub(crate) fn early(args: fmt::Arguments<'_>) {
    let _ = Raw.write_fmt(args);
}

/// Prints to the guest console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::_print(format_args!($($arg)*)) };
}

/// Prints a line to the guest console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::_print(format_args!("{}\n", format_args!($($arg)*))) };
}
