//! Hypervisor output: everything goes through the console multiplexer onto the physical UART.

use core::fmt::{self, Write};

use super::uart;
use hypervisor::console::{Console, Target};

/// The console multiplexer, shared by all cores.
pub static CONSOLE: spin::Mutex<Console> = spin::Mutex::new(Console::new());

struct Out<'a>(&'a mut Console, Target);

impl Write for Out<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            self.0.output(self.1, b, &mut uart::put);
        }
        Ok(())
    }
}

/// Prints a hypervisor line, starting on a fresh line.
pub fn hv_line(args: fmt::Arguments<'_>) {
    let mut c = CONSOLE.lock();
    c.end_line(&mut uart::put);
    let _ = Out(&mut c, Target::Monitor).write_fmt(args);
    let _ = Out(&mut c, Target::Monitor).write_str("\n");
}

/// Last-resort output for a hypervisor crash: bypasses the lock, which may be held.
pub fn emergency(args: fmt::Arguments<'_>) {
    struct Raw;
    impl Write for Raw {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for b in s.bytes() {
                if b == b'\n' {
                    uart::put(b'\r');
                }
                uart::put(b);
            }
            Ok(())
        }
    }
    let _ = Raw.write_fmt(args);
}

/// Prints a line from the hypervisor, tagged `[hv] `.
#[macro_export]
macro_rules! hvprintln {
    ($($arg:tt)*) => { $crate::arch::print::hv_line(format_args!($($arg)*)) };
}
