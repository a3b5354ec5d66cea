//! The scheduling core of the SIS LLM guest: constant-bandwidth servers (CBS, hard reservation)
//! dispatched by earliest deadline first (EDF), with utilisation-based admission control, a
//! per-server token quota, bounded job queues and deadline/jitter metrics.
//!
//! Pure `no_std` logic with no clock and no hardware access: the caller passes monotonic time
//! in ns to every operation, runs the job that [`Scheduler::dispatch`] picks for at most the
//! returned slice, reports what it used with [`Scheduler::charge`], and completes jobs with
//! [`Scheduler::complete`]. The model, rules and metric definitions are in
//! `docs/scheduler.md`.
//!
//! ```
//! use sis_sched::{cycles_to_ns, Decision, DefaultScheduler, JobSpec, ServerConfig};
//!
//! let mut s = DefaultScheduler::default();
//! // `llmctl budget --wcet-cycles 25000 --period-ns 1000000000 --max-tokens-per-period 8`
//! let cfg = ServerConfig::from_wcet_cycles(25_000, 62_500_000, 1_000_000_000, 8).unwrap();
//! let llm = s.add_server(cfg, 0).unwrap();
//! s.submit(llm, JobSpec { max_tokens: 8 }, 0).unwrap();
//! assert!(s.submit(llm, JobSpec { max_tokens: 1 }, 10).is_err()); // quota of 8 used up
//! let Decision::Run(d) = s.dispatch(10).unwrap() else { unreachable!() };
//! assert_eq!((d.server, d.slice_ns), (llm, cycles_to_ns(25_000, 62_500_000).unwrap()));
//! s.charge(llm, 300_000, 300_010).unwrap(); // one step took 300 us
//! s.record_tokens(llm, 1).unwrap();
//! let done = s.complete(llm, 300_010).unwrap();
//! assert!(!done.missed);
//! assert_eq!(s.totals().counters.tokens, 1);
//! ```
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
