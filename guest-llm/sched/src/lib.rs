//! The scheduling core of the SIS LLM guest: constant-bandwidth servers (CBS, hard reservation)
//! dispatched by earliest deadline first (EDF), with utilisation-based admission control, a
//! per-server token quota, bounded job queues and deadline/jitter metrics.
//!
//! Pure `no_std` logic with no clock and no hardware access: the caller passes monotonic time
//! in ns to every operation, runs the job that [`Scheduler::dispatch`] picks for at most the
//! returned slice, reports what it used with [`Scheduler::charge`], and completes jobs with
//! [`Scheduler::complete`]. The model, rules and metric definitions are in
//! `docs/scheduler.md`.
#![no_std]
#![deny(missing_docs)]

pub mod admission;
pub mod cbs;
pub mod cycles;
pub mod error;
pub mod job;
pub mod metrics;
pub mod quota;
pub mod scheduler;
pub mod server;
pub mod stats;

pub use admission::{ServerConfig, DEFAULT_BOUND_PPB, PPB};
pub use cycles::{cycles_to_ns, ns_to_cycles, NS_PER_SEC};
pub use error::SchedError;
pub use job::{Completion, Job, JobId, JobSpec};
pub use metrics::{AdmissionCounters, Counters, ServerStats, TotalStats};
pub use scheduler::{ChargeOutcome, Decision, DefaultScheduler, Dispatch, Scheduler};
pub use server::ServerId;
pub use stats::{Percentiles, SAMPLE_WINDOW};
