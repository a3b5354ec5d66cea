//! Shell framework: line editing, word splitting and command dispatch (pure logic, host
//! tested), plus the target loop that feeds it from the UART.

pub mod args;
pub mod line;
pub mod opts;
pub mod table;

#[cfg(target_os = "none")]
mod run;
#[cfg(target_os = "none")]
pub use run::{rejected_lines, run, run_with, LINE_MAX};

pub use args::parse_u64;
pub use table::{Command, Commands, Invocation, Outcome};
