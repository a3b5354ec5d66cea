//! One unit of the scheduler loop's work ([`Service::poll`]): release due background jobs,
//! admit queued requests, ask EDF which job runs and run one step of it; with nothing eligible,
//! a reclaimed step of a throttled job (see [`super::slack`]).

use sis_sched::Decision;

use super::{now_ns, Service};

impl Service {
    /// One unit of work; returns whether anything was done.
    pub fn poll(&self) -> bool {
        let now = now_ns();
        self.release_periodic(now);
        let mut worked = false;
        // Pop in its own statement: the IRQ-masking lock must not be held while admitting.
        while let Some(p) = self.inbox.pop() {
            self.admit(p, now_ns());
            worked = true;
        }
        let decision = self.state.lock().sched.dispatch(now_ns().max(now));
        match decision {
            Ok(Decision::Run(d)) => {
                self.run_step(d.server, d.job, d.slice_ns, true);
                true
            }
            Ok(Decision::Idle { .. }) if self.slack() => match self.slack_candidate() {
                Some((server, job)) => {
                    self.run_step(server, job, u64::MAX, false);
                    true
                }
                None => worked,
            },
            Ok(Decision::Idle { .. }) => worked,
            Err(_) => {
                self.failed_internally();
                worked
            }
        }
    }
}
