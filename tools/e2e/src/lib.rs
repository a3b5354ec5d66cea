//! End-to-end test harness for SIS.
//!
//! [`Sis::start`] boots the system under QEMU through `scripts/run.sh` with the UART and the
//! virtio-console on UNIX sockets; [`Console`] (reachable through `Sis` by `Deref`) splits the
//! multiplexed UART into per-source views and drives the shells; [`Sis::datactl`] runs the host
//! tool against the instance. Every wait is bounded, and a failing test gets the console log.
//!
//! ```no_run
//! use sis_e2e::{Options, Sis, Source};
//! use std::time::Duration;
//!
//! let sis = Sis::start(Options::default())?;
//! sis.wait_prompt(Source::Ctl, Duration::from_secs(30))?;
//! let out = sis.run(Source::Llm, "llmctl status", Duration::from_secs(10))?;
//! assert!(out.contains("budget"), "{out}");
//! # Ok::<(), sis_e2e::Error>(())
//! ```

mod build;
mod command;
mod console;
mod error;
mod escape;
mod log;
mod parse;
mod pattern;
mod process;
mod qmp;
mod sis;
mod slots;
mod source;
pub mod text;

pub use build::{build_once, BUILD_TIMEOUT};
pub use command::{datactl_binary, run_command, CommandOutput};
pub use console::{Console, ConsoleOptions, ConsoleStats, FocusSync};
pub use error::{Error, Result};
pub use escape::{EscapeTracker, CTRL_A};
pub use parse::{LineParser, ParseStats};
pub use pattern::{Match, Pattern};
pub use qmp::Qmp;
pub use sis::{workspace_root, Options, Sis, DATACTL_SOCKET_FLAG};
/// Platform constants (addresses tests poke at), from the one place that defines them.
pub use sis_platform as platform;
pub use slots::DEFAULT_PARALLEL;
pub use source::Source;
