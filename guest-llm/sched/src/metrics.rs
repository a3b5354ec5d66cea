//! Counters and the snapshots returned by the status queries.
//!
//! Exact definitions are in `docs/scheduler.md`; in short, every counter only grows
//! (saturating at `u64::MAX`), and the same event is counted on its server and in the totals.

use crate::admission::ServerConfig;
use crate::server::ServerId;
use crate::stats::Percentiles;

/// Event counters, kept per server and in total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Jobs accepted into a queue.
    pub jobs_admitted: u64,
    /// Jobs completed.
    pub jobs_completed: u64,
    /// Jobs removed by `cancel` before completing.
    pub jobs_canceled: u64,
    /// Submissions refused by the token quota.
    pub rejected_quota: u64,
    /// Submissions refused because the queue was full.
    pub rejected_queue_full: u64,
    /// Submissions refused as malformed (0 tokens).
    pub rejected_invalid: u64,
    /// Completed jobs whose completion time was after the deadline they were released with.
    pub deadline_misses: u64,
    /// Largest lateness of a missed job, ns.
    pub max_lateness_ns: u64,
    /// Budget exhaustions (each one throttles the server).
    pub throttle_events: u64,
    /// ns charged beyond the remaining budget, summed over exhaustions.
    pub overrun_ns: u64,
    /// Execution time charged, ns.
    pub consumed_ns: u64,
    /// Charges (execution steps).
    pub steps: u64,
    /// Tokens reported as produced.
    pub tokens: u64,
}

impl Counters {
    /// All zero.
    pub const ZERO: Self = Self {
        jobs_admitted: 0,
        jobs_completed: 0,
        jobs_canceled: 0,
        rejected_quota: 0,
        rejected_queue_full: 0,
        rejected_invalid: 0,
        deadline_misses: 0,
        max_lateness_ns: 0,
        throttle_events: 0,
        overrun_ns: 0,
        consumed_ns: 0,
        steps: 0,
        tokens: 0,
    };

    /// Submissions refused for any reason.
    pub const fn jobs_rejected(&self) -> u64 {
        self.rejected_quota
            .saturating_add(self.rejected_queue_full)
            .saturating_add(self.rejected_invalid)
    }
}

/// Outcomes of admission decisions (`add_server` and `reconfigure`): the seed's
/// `det_admission_*`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdmissionCounters {
    /// Configurations admitted.
    pub accepted: u64,
    /// Refused because total utilisation would exceed the bound.
    pub rejected_bound: u64,
    /// Refused as invalid (period 0, budget 0, budget > period).
    pub rejected_invalid: u64,
    /// Refused because every server slot was in use.
    pub rejected_capacity: u64,
}

impl AdmissionCounters {
    /// All zero.
    pub const ZERO: Self = Self {
        accepted: 0,
        rejected_bound: 0,
        rejected_invalid: 0,
        rejected_capacity: 0,
    };

    /// Configurations refused for any reason.
    pub const fn rejected(&self) -> u64 {
        self.rejected_bound
            .saturating_add(self.rejected_invalid)
            .saturating_add(self.rejected_capacity)
    }
}

/// State and metrics of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerStats {
    /// The server.
    pub id: ServerId,
    /// Its parameters.
    pub config: ServerConfig,
    /// Its admitted utilisation, ppb (rounded up).
    pub utilisation_ppb: u64,
    /// Its counters.
    pub counters: Counters,
    /// Jobs queued now (including the one being served).
    pub queue_depth: usize,
    /// Most jobs ever queued at once.
    pub max_queue_depth: usize,
    /// Current scheduling deadline, ns.
    pub deadline_ns: u64,
    /// Remaining budget, ns.
    pub remaining_ns: u64,
    /// Replenishment time while throttled.
    pub throttled_until: Option<u64>,
    /// Tokens reserved in the quota window containing the latest time seen.
    pub quota_used: u64,
    /// Response times (completion - submission) of its latest jobs.
    pub response: Option<Percentiles>,
    /// Response-time jitter (|R_k - R_(k-1)| of consecutive jobs) of its latest jobs.
    pub jitter: Option<Percentiles>,
}

/// Whole-scheduler state and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotalStats {
    /// Sum of every server's counters, including servers since removed.
    pub counters: Counters,
    /// Admission decisions.
    pub admission: AdmissionCounters,
    /// Servers configured now.
    pub servers: usize,
    /// Utilisation admitted now, ppb.
    pub admitted_ppb: u64,
    /// Utilisation bound, ppb.
    pub bound_ppb: u64,
    /// Execution charged over time observed (`consumed_ns * 1e9 / (last - first time seen)`),
    /// ppb; `None` before any time has elapsed.
    pub measured_ppb: Option<u64>,
    /// Jobs queued now over all servers.
    pub queue_depth: usize,
    /// Response times of the latest jobs of all servers.
    pub response: Option<Percentiles>,
    /// Response-time jitter samples of all servers (each taken within one server).
    pub jitter: Option<Percentiles>,
}
