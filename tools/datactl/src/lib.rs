//! `datactl`: host control of SIS over the `sis.datactl` virtio-console port.
//!
//! The wire format comes from `sis-frame` (one definition shared with the control guest).
//! Modules:
//! - [`transport`]: UNIX-socket or TCP connection with line reads bounded by a deadline;
//! - [`client`]: request/reply with the ACK timeout, retries and reconnects;
//! - [`cli`]: the command line (clap) and its exit codes;
//! - [`bench`](mod@bench): frames/s and ACK latency percentiles (`datactl-bench`);
//! - [`mock`]: the control guest's real host-control loop (`sis-hostctl`) behind a socket, with a
//!   stand-in LLM partition, for tests and bench self-checks.
//!
//! Host-only: on a bare-metal target this crate is empty.
#![cfg_attr(target_os = "none", no_std)]
#![warn(missing_docs)]

#[cfg(not(target_os = "none"))]
pub mod bench;
#[cfg(not(target_os = "none"))]
pub mod cli;
#[cfg(not(target_os = "none"))]
pub mod client;
#[cfg(not(target_os = "none"))]
pub mod mock;
#[cfg(not(target_os = "none"))]
pub mod transport;
