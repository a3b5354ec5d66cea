//! The one error type of the scheduler.
//!
//! Every operation that returns an error leaves the scheduler exactly as it was, apart from the
//! rejection counters that exist to count that error (see `docs/scheduler.md`).

use core::fmt;

use crate::job::JobId;
use crate::server::ServerId;

/// Why a scheduler operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedError {
    /// A cycle/ns conversion was asked with a timer frequency of 0 Hz.
    ZeroFrequency,
    /// A cycle/ns conversion result does not fit in a `u64`.
    ConversionOverflow {
        /// The value that was being converted.
        value: u64,
        /// The timer frequency in Hz.
        freq_hz: u64,
    },
    /// A server period of 0 ns.
    ZeroPeriod,
    /// A server budget of 0 ns.
    ZeroBudget,
    /// A server budget larger than its period (utilisation above 100%).
    BudgetExceedsPeriod {
        /// Requested budget Q in ns.
        budget_ns: u64,
        /// Requested period T in ns.
        period_ns: u64,
    },
    /// A utilisation bound of 0 or above 100% (1e9 parts per billion).
    InvalidBound {
        /// The refused bound in parts per billion.
        bound_ppb: u64,
    },
    /// Admitting the server would push total utilisation above the bound.
    UtilisationExceeded {
        /// Utilisation of the refused server, parts per billion (rounded up).
        requested_ppb: u64,
        /// Utilisation already admitted for the other servers, parts per billion.
        others_ppb: u64,
        /// The bound, parts per billion.
        bound_ppb: u64,
    },
    /// Every server slot is in use.
    TooManyServers {
        /// Number of server slots.
        capacity: usize,
    },
    /// No server with this id exists (never created, or removed).
    UnknownServer(ServerId),
    /// The server still has queued jobs, so it cannot be removed.
    ServerBusy {
        /// The busy server.
        server: ServerId,
        /// Jobs still queued.
        pending: usize,
    },
    /// A job asked for 0 tokens.
    ZeroTokens,
    /// The server's job queue is full.
    QueueFull {
        /// The server whose queue is full.
        server: ServerId,
        /// Queue capacity in jobs.
        capacity: usize,
    },
    /// Admitting the job would exceed the server's token quota in the current quota window.
    QuotaExceeded {
        /// Tokens the job asked for.
        requested: u32,
        /// Tokens already reserved in the current window.
        used: u64,
        /// `max_tokens_per_period` of the server.
        limit: u32,
    },
    /// The server has no queued job to charge, credit or complete.
    NoPendingJob(ServerId),
    /// No queued job with this id on this server.
    UnknownJob(JobId),
    /// Reported tokens would exceed what the running job asked for at submission.
    TokensExceedJob {
        /// The running job.
        job: JobId,
        /// Tokens it asked for.
        max_tokens: u32,
        /// Tokens already reported.
        produced: u32,
        /// Tokens the refused report would add.
        adding: u32,
    },
    /// `now_ns` is earlier than a time already passed to the scheduler.
    TimeWentBackwards {
        /// Latest time seen so far.
        last_ns: u64,
        /// The refused earlier time.
        now_ns: u64,
    },
}

impl fmt::Display for SchedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ZeroFrequency => write!(f, "timer frequency is 0 Hz"),
            Self::ConversionOverflow { value, freq_hz } => write!(
                f,
                "converting {value} at {freq_hz} Hz overflows a 64-bit value"
            ),
            Self::ZeroPeriod => write!(f, "period must be greater than 0 ns"),
            Self::ZeroBudget => write!(f, "budget must be greater than 0 ns"),
            Self::BudgetExceedsPeriod {
                budget_ns,
                period_ns,
            } => write!(
                f,
                "budget {budget_ns} ns exceeds period {period_ns} ns"
            ),
            Self::InvalidBound { bound_ppb } => write!(
                f,
                "utilisation bound {bound_ppb} ppb is not in 1..=1000000000"
            ),
            Self::UtilisationExceeded {
                requested_ppb,
                others_ppb,
                bound_ppb,
            } => write!(
                f,
                "admission rejected: {requested_ppb} ppb + {others_ppb} ppb admitted exceeds bound {bound_ppb} ppb"
            ),
            Self::TooManyServers { capacity } => {
                write!(f, "all {capacity} server slots are in use")
            }
            Self::UnknownServer(id) => write!(f, "no server {}", id.0),
            Self::ServerBusy { server, pending } => {
                write!(f, "server {} still has {pending} queued jobs", server.0)
            }
            Self::ZeroTokens => write!(f, "a job must ask for at least 1 token"),
            Self::QueueFull { server, capacity } => {
                write!(f, "server {} queue full ({capacity} jobs)", server.0)
            }
            Self::QuotaExceeded {
                requested,
                used,
                limit,
            } => write!(
                f,
                "token quota exceeded: {requested} requested + {used} used > {limit} per period"
            ),
            Self::NoPendingJob(id) => write!(f, "server {} has no queued job", id.0),
            Self::UnknownJob(id) => write!(f, "no queued job {}", id.0),
            Self::TokensExceedJob {
                job,
                max_tokens,
                produced,
                adding,
            } => write!(
                f,
                "job {} asked for {max_tokens} tokens, has {produced}, cannot add {adding}",
                job.0
            ),
            Self::TimeWentBackwards { last_ns, now_ns } => {
                write!(f, "time went backwards: {now_ns} ns < {last_ns} ns")
            }
        }
    }
}
