//! The deterministic LLM service: inference jobs under constant-bandwidth servers dispatched
//! by EDF (`sis-sched`), executed in bounded steps (a prefill chunk or one token) by the
//! scheduler loop on the boot core, with audit records for every operation.
//!
//! One owner: [`SERVICE`], a [`Service`] holding everything the service keeps (the inbox, the
//! servers, the running jobs and the scheduler, the metrics, the budget watch, the idle-time
//! reclaiming switch). Each module adds the methods of one job to it:
//!
//! - [`request`]: what a job is ([`JobRequest`]), how it ends ([`Report`], [`JobError`]) and
//!   who hears about it ([`ReplySink`]);
//! - [`inbox`]: [`Service::submit`], callable from any context (interrupt handlers included: no
//!   allocation, IRQ-safe lock); the shell, the background sources and the ring all use it, so
//!   every job goes through the same inbox and the same admission;
//! - [`servers`], [`load`], [`background`]: configuration (servers, the model and the default
//!   server, background sources), in thread context on the boot core;
//! - [`admission`], [`step`], [`dispatch`], [`slack`], [`budget`], [`cancel`]: running jobs
//!   ([`Service::poll`] is one unit of work: admit queued requests, release background jobs,
//!   run one step of the job EDF picks, or of a throttled one in idle time);
//! - [`status`], [`audit`]: what `llmctl status`, `llmctl audit` and `llmjson` print;
//! - the front ends: [`ring_jobs`] (requests from the control guest) and [`shell_loop`] (the
//!   boot core's loop: shell input and scheduler steps interleaved); [`args`] parses the shell's
//!   inference options and [`calibration`] derives the default budget from the measured cost
//!   per token (both pure, host tested).
//!
//! Design notes and the exact semantics are in `docs/llm-service.md`.

pub mod args;
pub mod calibration;
pub mod reply_text;
pub mod session_table;

#[cfg(target_os = "none")]
pub mod admission;
#[cfg(target_os = "none")]
pub mod audit;
#[cfg(target_os = "none")]
pub mod background;
#[cfg(target_os = "none")]
pub mod budget;
#[cfg(target_os = "none")]
pub mod cancel;
#[cfg(target_os = "none")]
pub mod conversation;
#[cfg(target_os = "none")]
pub mod dispatch;
#[cfg(target_os = "none")]
pub mod inbox;
#[cfg(target_os = "none")]
pub mod load;
#[cfg(target_os = "none")]
pub mod request;
#[cfg(target_os = "none")]
pub mod ring_jobs;
#[cfg(target_os = "none")]
pub mod servers;
#[cfg(target_os = "none")]
pub mod shell_loop;
#[cfg(target_os = "none")]
pub mod slack;
#[cfg(target_os = "none")]
mod state;
#[cfg(target_os = "none")]
pub mod status;
#[cfg(target_os = "none")]
pub mod step;

#[cfg(target_os = "none")]
pub use request::{JobError, JobKind, JobRequest, ReplySink, Report};
#[cfg(target_os = "none")]
pub use servers::ServerSettings;
#[cfg(target_os = "none")]
pub use state::{
    now_ns, Service, DEFAULT_PERIOD_NS, DEFAULT_SERVER, INBOX_CAPACITY, PREFILL_CHUNK, SERVICE,
};
