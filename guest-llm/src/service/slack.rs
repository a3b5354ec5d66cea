//! Idle-time reclaiming (`llmctl slack on|off`, default on): when no server may run (EDF has
//! nothing eligible) but throttled servers have queued work, the loop runs one step of the
//! throttled head job with the earliest deadline without charging its budget (the CPU would
//! otherwise idle). A server arriving meanwhile waits for at most that one step, the same
//! blocking any step causes. Off: strict hard CBS, a throttled job waits for its replenishment.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sis_sched::{JobId, ServerId};

use super::Service;

/// The switch and what it reclaimed.
pub(super) struct Slack {
    on: AtomicBool,
    steps: AtomicU64,
    ns: AtomicU64,
}

impl Slack {
    pub(super) const fn new() -> Self {
        Slack {
            on: AtomicBool::new(true),
            steps: AtomicU64::new(0),
            ns: AtomicU64::new(0),
        }
    }

    /// A step of `ns` ran in idle time.
    pub(super) fn count(&self, ns: u64) {
        self.steps.fetch_add(1, Ordering::Relaxed);
        self.ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// (steps run in idle time, their ns) since boot.
    pub(super) fn reclaimed(&self) -> (u64, u64) {
        (
            self.steps.load(Ordering::Relaxed),
            self.ns.load(Ordering::Relaxed),
        )
    }
}

impl Service {
    /// Turns idle-time reclaiming on or off.
    pub fn set_slack(&self, on: bool) {
        self.slack.on.store(on, Ordering::Release);
    }

    /// Whether idle-time reclaiming is on.
    pub fn slack(&self) -> bool {
        self.slack.on.load(Ordering::Acquire)
    }

    /// The head job of the throttled server with queued work and the earliest deadline.
    pub(super) fn slack_candidate(&self) -> Option<(ServerId, JobId)> {
        let st = self.state.lock();
        let sched = &st.sched;
        let mut best: Option<(u64, ServerId)> = None;
        for id in sched.server_ids() {
            let Ok(s) = sched.server_stats(id) else {
                continue;
            };
            if s.queue_depth > 0
                && s.throttled_until.is_some()
                && best.is_none_or(|b| (s.deadline_ns, id.0) < (b.0, b.1 .0))
            {
                best = Some((s.deadline_ns, id));
            }
        }
        let (_, id) = best?;
        let job = sched.head_job(id).ok()??;
        Some((id, job.id))
    }
}
