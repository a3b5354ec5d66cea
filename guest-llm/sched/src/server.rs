//! One constant-bandwidth server: its parameters, CBS state, quota, job queue and metrics.

use heapless::Deque;

use crate::admission::ServerConfig;
use crate::cbs::Cbs;
use crate::job::Job;
use crate::metrics::Counters;
use crate::quota::TokenQuota;
use crate::stats::SampleRing;

/// Identifier of a server, unique among live servers; ids are not reused until the 32-bit
/// counter wraps. Ties in EDF are broken by the smaller id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerId(pub u32);

/// A server slot's contents (internal to the scheduler).
#[derive(Debug, Clone)]
pub(crate) struct Server<const QUEUE: usize> {
    pub(crate) id: ServerId,
    pub(crate) config: ServerConfig,
    pub(crate) utilisation_ppb: u64,
    pub(crate) cbs: Cbs,
    pub(crate) quota: TokenQuota,
    pub(crate) queue: Deque<Job, QUEUE>,
    pub(crate) max_depth: usize,
    pub(crate) counters: Counters,
    pub(crate) last_response_ns: Option<u64>,
    pub(crate) response: SampleRing,
    pub(crate) jitter: SampleRing,
}

impl<const QUEUE: usize> Server<QUEUE> {
    /// A new idle server; `config` must be validated and admitted.
    pub(crate) fn new(id: ServerId, config: ServerConfig, now_ns: u64) -> Self {
        Self {
            id,
            config,
            utilisation_ppb: config.utilisation_ppb(),
            cbs: Cbs::new(&config),
            quota: TokenQuota::new(config.max_tokens_per_period, config.period_ns, now_ns),
            queue: Deque::new(),
            max_depth: 0,
            counters: Counters::ZERO,
            last_response_ns: None,
            response: SampleRing::new(),
            jitter: SampleRing::new(),
        }
    }

    /// Ready to run: work queued and not throttled.
    pub(crate) fn is_ready(&self) -> bool {
        !self.queue.is_empty() && self.cbs.throttled_until().is_none()
    }

    /// EDF key: earlier deadline first, then smaller id.
    pub(crate) fn edf_key(&self) -> (u64, ServerId) {
        (self.cbs.deadline_ns(), self.id)
    }

    /// Gives the head job, if it has none yet, the server's current deadline.
    pub(crate) fn release_head(&mut self) {
        let deadline = self.cbs.deadline_ns();
        if let Some(head) = self.queue.front_mut() {
            if head.deadline_ns.is_none() {
                head.deadline_ns = Some(deadline);
            }
        }
    }
}
