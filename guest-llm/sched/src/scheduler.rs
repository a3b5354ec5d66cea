//! The scheduler: admission, job submission, EDF dispatch over CBS servers, charging and
//! completion, metrics.
//!
//! The caller owns the clock: every operation that depends on time takes `now_ns`, which must
//! never decrease (a smaller value is refused with [`SchedError::TimeWentBackwards`]).

use crate::admission::{admit, validate_bound, ServerConfig, DEFAULT_BOUND_PPB, PPB};
use crate::error::SchedError;
use crate::job::{Completion, Job, JobId, JobSpec};
use crate::metrics::{AdmissionCounters, Counters, ServerStats, TotalStats};
use crate::server::{Server, ServerId};
use crate::stats::SampleRing;

/// What the caller should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Run this server's head job.
    Run(Dispatch),
    /// Nothing may run now.
    Idle {
        /// Earliest replenishment of a throttled server that has work (program the timer for
        /// it); `None` when no server has work.
        wake_at_ns: Option<u64>,
    },
}

/// The EDF choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dispatch {
    /// Server with the earliest deadline among the ready ones.
    pub server: ServerId,
    /// Its head job.
    pub job: JobId,
    /// The server's scheduling deadline, ns.
    pub deadline_ns: u64,
    /// How long it may run before it must be preempted: the smaller of its remaining budget
    /// and the time until a throttled server with an earlier deadline is replenished.
    pub slice_ns: u64,
}

/// What a charge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChargeOutcome {
    /// Remaining budget after the charge (refilled if it was exhausted), ns.
    pub remaining_ns: u64,
    /// Scheduling deadline after the charge, ns.
    pub deadline_ns: u64,
    /// The budget was exhausted: the server is throttled until this time.
    pub throttled_until: Option<u64>,
    /// ns charged beyond the budget that remained.
    pub overrun_ns: u64,
}

/// CBS servers dispatched by EDF, for one CPU. `SERVERS` server slots, `QUEUE` jobs per server.
#[derive(Debug, Clone)]
pub struct Scheduler<const SERVERS: usize, const QUEUE: usize> {
    slots: [Option<Server<QUEUE>>; SERVERS],
    bound_ppb: u64,
    next_server: u32,
    next_job: u64,
    first_ns: Option<u64>,
    last_ns: u64,
    totals: Counters,
    admission: AdmissionCounters,
    response: SampleRing,
    jitter: SampleRing,
}

/// A scheduler with 8 servers of 16 queued jobs each.
pub type DefaultScheduler = Scheduler<8, 16>;

impl<const SERVERS: usize, const QUEUE: usize> Default for Scheduler<SERVERS, QUEUE> {
    fn default() -> Self {
        Self::with_default_bound()
    }
}

fn bump(server: &mut Counters, totals: &mut Counters, f: impl Fn(&mut Counters)) {
    f(server);
    f(totals);
}

impl<const SERVERS: usize, const QUEUE: usize> Scheduler<SERVERS, QUEUE> {
    /// An empty scheduler with the default 85% utilisation bound.
    pub const fn with_default_bound() -> Self {
        Self {
            slots: [const { None }; SERVERS],
            bound_ppb: DEFAULT_BOUND_PPB,
            next_server: 0,
            next_job: 0,
            first_ns: None,
            last_ns: 0,
            totals: Counters::ZERO,
            admission: AdmissionCounters::ZERO,
            response: SampleRing::new(),
            jitter: SampleRing::new(),
        }
    }

    /// An empty scheduler whose total utilisation may not exceed `bound_ppb` (1..=1e9).
    pub fn new(bound_ppb: u64) -> Result<Self, SchedError> {
        validate_bound(bound_ppb)?;
        let mut s = Self::with_default_bound();
        s.bound_ppb = bound_ppb;
        Ok(s)
    }

    /// The utilisation bound, ppb.
    pub const fn bound_ppb(&self) -> u64 {
        self.bound_ppb
    }

    /// Sum of the admitted servers' utilisations, ppb.
    pub fn admitted_ppb(&self) -> u64 {
        self.servers_iter().map(|s| s.utilisation_ppb).sum()
    }

    /// Latest time seen, ns.
    pub const fn now_ns(&self) -> u64 {
        self.last_ns
    }

    /// Ids of the configured servers, in slot order.
    pub fn server_ids(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.servers_iter().map(|s| s.id)
    }

    fn servers_iter(&self) -> impl Iterator<Item = &Server<QUEUE>> {
        self.slots.iter().flatten()
    }

    fn check_time(&self, now_ns: u64) -> Result<(), SchedError> {
        if now_ns < self.last_ns {
            return Err(SchedError::TimeWentBackwards {
                last_ns: self.last_ns,
                now_ns,
            });
        }
        Ok(())
    }

    /// Moves time to `now_ns` (checked by the caller) and ends due throttles.
    fn advance(&mut self, now_ns: u64) {
        self.last_ns = now_ns;
        self.first_ns.get_or_insert(now_ns);
        for s in self.slots.iter_mut().flatten() {
            s.cbs.release_if_due(now_ns);
        }
    }

    fn slot_of(&self, id: ServerId) -> Result<usize, SchedError> {
        self.slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.id == id))
            .ok_or(SchedError::UnknownServer(id))
    }

    fn server_mut(&mut self, slot: usize) -> &mut Server<QUEUE> {
        self.slots[slot]
            .as_mut()
            .expect("slot index comes from slot_of")
    }

    fn fresh_server_id(&mut self) -> ServerId {
        loop {
            let id = ServerId(self.next_server);
            self.next_server = self.next_server.wrapping_add(1);
            if self.slot_of(id).is_err() {
                return id;
            }
        }
    }

    /// Admits a new server. Errors: invalid parameters, [`SchedError::UtilisationExceeded`],
    /// [`SchedError::TooManyServers`] (each counted in the admission counters), or time going
    /// backwards; nothing else changes on error.
    pub fn add_server(
        &mut self,
        config: ServerConfig,
        now_ns: u64,
    ) -> Result<ServerId, SchedError> {
        self.check_time(now_ns)?;
        self.decide_admission(config, None)?;
        let Some(free) = self.slots.iter().position(Option::is_none) else {
            self.admission.rejected_capacity = self.admission.rejected_capacity.saturating_add(1);
            return Err(SchedError::TooManyServers { capacity: SERVERS });
        };
        self.advance(now_ns);
        let id = self.fresh_server_id();
        self.slots[free] = Some(Server::new(id, config, now_ns));
        self.admission.accepted = self.admission.accepted.saturating_add(1);
        Ok(id)
    }

    /// Validates `config` and runs the utilisation test against every server except `replacing`.
    fn decide_admission(
        &mut self,
        config: ServerConfig,
        replacing: Option<usize>,
    ) -> Result<(), SchedError> {
        if let Err(e) = config.validate() {
            self.admission.rejected_invalid = self.admission.rejected_invalid.saturating_add(1);
            return Err(e);
        }
        let others: u64 = self
            .slots
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != replacing)
            .filter_map(|(_, s)| s.as_ref())
            .map(|s| s.utilisation_ppb)
            .sum();
        if let Err(e) = admit(config.utilisation_ppb(), others, self.bound_ppb) {
            self.admission.rejected_bound = self.admission.rejected_bound.saturating_add(1);
            return Err(e);
        }
        Ok(())
    }

    /// Gives a server new parameters, admission re-checked against the other servers. The
    /// current budget is cut to the new Q (never grown), the deadline, throttle and queued jobs
    /// are kept; the quota window keeps its start and reservations and the new limit applies
    /// to it at once.
    pub fn reconfigure(
        &mut self,
        id: ServerId,
        config: ServerConfig,
        now_ns: u64,
    ) -> Result<(), SchedError> {
        self.check_time(now_ns)?;
        let slot = self.slot_of(id)?;
        self.decide_admission(config, Some(slot))?;
        self.advance(now_ns);
        let s = self.server_mut(slot);
        s.config = config;
        s.utilisation_ppb = config.utilisation_ppb();
        s.cbs.reconfigure(&config);
        s.quota
            .reconfigure(config.max_tokens_per_period, config.period_ns, now_ns);
        self.admission.accepted = self.admission.accepted.saturating_add(1);
        Ok(())
    }

    /// Removes an idle server (no queued job), freeing its utilisation. Its counters stay in
    /// the totals.
    pub fn remove_server(&mut self, id: ServerId, now_ns: u64) -> Result<(), SchedError> {
        self.check_time(now_ns)?;
        let slot = self.slot_of(id)?;
        let pending = self.server_mut(slot).queue.len();
        if pending != 0 {
            return Err(SchedError::ServerBusy {
                server: id,
                pending,
            });
        }
        self.advance(now_ns);
        self.slots[slot] = None;
        Ok(())
    }

    /// Queues a job on a server. Refused (and counted) when it asks for 0 tokens
    /// ([`SchedError::ZeroTokens`]), when the queue is full ([`SchedError::QueueFull`]) or when
    /// its tokens would exceed the quota of the current window ([`SchedError::QuotaExceeded`]).
    pub fn submit(
        &mut self,
        id: ServerId,
        spec: JobSpec,
        now_ns: u64,
    ) -> Result<JobId, SchedError> {
        self.check_time(now_ns)?;
        let slot = self.slot_of(id)?;
        let Self { slots, totals, .. } = self;
        let s = slots[slot].as_mut().expect("slot index comes from slot_of");
        if spec.max_tokens == 0 {
            bump(&mut s.counters, totals, |c| {
                c.rejected_invalid = c.rejected_invalid.saturating_add(1)
            });
            return Err(SchedError::ZeroTokens);
        }
        if s.queue.is_full() {
            bump(&mut s.counters, totals, |c| {
                c.rejected_queue_full = c.rejected_queue_full.saturating_add(1)
            });
            return Err(SchedError::QueueFull {
                server: id,
                capacity: QUEUE,
            });
        }
        if let Err(e) = s.quota.check(now_ns, spec.max_tokens) {
            bump(&mut s.counters, totals, |c| {
                c.rejected_quota = c.rejected_quota.saturating_add(1)
            });
            return Err(e);
        }
        self.advance(now_ns);
        let job_id = JobId(self.next_job);
        self.next_job += 1;
        let Self { slots, totals, .. } = self;
        let s = slots[slot].as_mut().expect("slot index comes from slot_of");
        if s.queue.is_empty() {
            s.cbs.on_arrival_idle(now_ns);
        }
        let job = Job {
            id: job_id,
            max_tokens: spec.max_tokens,
            arrival_ns: now_ns,
            deadline_ns: None,
            tokens: 0,
            consumed_ns: 0,
            steps: 0,
        };
        if s.queue.push_back(job).is_err() {
            unreachable!("queue fullness checked above");
        }
        s.release_head();
        s.quota.reserve(now_ns, spec.max_tokens);
        s.max_depth = s.max_depth.max(s.queue.len());
        bump(&mut s.counters, totals, |c| {
            c.jobs_admitted = c.jobs_admitted.saturating_add(1)
        });
        Ok(job_id)
    }

    /// Removes a queued job (running or waiting) without completing it. Its quota reservation
    /// is not refunded. If it was the head, the next job is released with the server's current
    /// deadline.
    pub fn cancel(&mut self, id: ServerId, job: JobId, now_ns: u64) -> Result<(), SchedError> {
        self.check_time(now_ns)?;
        let slot = self.slot_of(id)?;
        if !self.server_mut(slot).queue.iter().any(|j| j.id == job) {
            return Err(SchedError::UnknownJob(job));
        }
        self.advance(now_ns);
        let Self { slots, totals, .. } = self;
        let s = slots[slot].as_mut().expect("slot index comes from slot_of");
        for _ in 0..s.queue.len() {
            let Some(j) = s.queue.pop_front() else { break };
            if j.id != job && s.queue.push_back(j).is_err() {
                unreachable!("re-queueing never exceeds the previous length");
            }
        }
        s.release_head();
        bump(&mut s.counters, totals, |c| {
            c.jobs_canceled = c.jobs_canceled.saturating_add(1)
        });
        Ok(())
    }

    /// EDF: among servers with queued work that are not throttled, the one with the earliest
    /// scheduling deadline (ties: smaller server id).
    pub fn dispatch(&mut self, now_ns: u64) -> Result<Decision, SchedError> {
        self.check_time(now_ns)?;
        self.advance(now_ns);
        let best = self
            .servers_iter()
            .filter(|s| s.is_ready())
            .min_by_key(|s| s.edf_key());
        let Some(best) = best else {
            let wake_at_ns = self
                .servers_iter()
                .filter(|s| !s.queue.is_empty())
                .filter_map(|s| s.cbs.throttled_until())
                .min();
            return Ok(Decision::Idle { wake_at_ns });
        };
        let key = best.edf_key();
        let preempt_in = self
            .servers_iter()
            .filter(|s| !s.queue.is_empty() && s.edf_key() < key)
            .filter_map(|s| s.cbs.throttled_until())
            .map(|at| at - now_ns)
            .min()
            .unwrap_or(u64::MAX);
        let head = best.queue.front().expect("ready servers have a queued job");
        Ok(Decision::Run(Dispatch {
            server: best.id,
            job: head.id,
            deadline_ns: best.cbs.deadline_ns(),
            slice_ns: best.cbs.remaining_ns().min(preempt_in),
        }))
    }

    /// Charges `ns` of execution, ending at `now_ns`, to the server's head job and budget. On
    /// exhaustion the server is throttled (counted) until its replenishment time.
    pub fn charge(
        &mut self,
        id: ServerId,
        ns: u64,
        now_ns: u64,
    ) -> Result<ChargeOutcome, SchedError> {
        self.check_time(now_ns)?;
        let slot = self.slot_of(id)?;
        if self.server_mut(slot).queue.is_empty() {
            return Err(SchedError::NoPendingJob(id));
        }
        self.advance(now_ns);
        let Self { slots, totals, .. } = self;
        let s = slots[slot].as_mut().expect("slot index comes from slot_of");
        if let Some(head) = s.queue.front_mut() {
            head.consumed_ns = head.consumed_ns.saturating_add(ns);
            head.steps = head.steps.saturating_add(1);
        }
        let effect = s.cbs.charge(ns);
        bump(&mut s.counters, totals, |c| {
            c.consumed_ns = c.consumed_ns.saturating_add(ns);
            c.steps = c.steps.saturating_add(1);
            if effect.throttled_until.is_some() {
                c.throttle_events = c.throttle_events.saturating_add(1);
                c.overrun_ns = c.overrun_ns.saturating_add(effect.overrun_ns);
            }
        });
        Ok(ChargeOutcome {
            remaining_ns: s.cbs.remaining_ns(),
            deadline_ns: s.cbs.deadline_ns(),
            throttled_until: effect.throttled_until,
            overrun_ns: effect.overrun_ns,
        })
    }

    /// Credits `tokens` produced by the server's head job. Refused if the job would then have
    /// more tokens than it asked for at submission.
    pub fn record_tokens(&mut self, id: ServerId, tokens: u32) -> Result<(), SchedError> {
        let slot = self.slot_of(id)?;
        let Self { slots, totals, .. } = self;
        let s = slots[slot].as_mut().expect("slot index comes from slot_of");
        let head = s.queue.front_mut().ok_or(SchedError::NoPendingJob(id))?;
        if u64::from(head.tokens) + u64::from(tokens) > u64::from(head.max_tokens) {
            return Err(SchedError::TokensExceedJob {
                job: head.id,
                max_tokens: head.max_tokens,
                produced: head.tokens,
                adding: tokens,
            });
        }
        head.tokens += tokens;
        bump(&mut s.counters, totals, |c| {
            c.tokens = c.tokens.saturating_add(u64::from(tokens))
        });
        Ok(())
    }

    /// Completes the server's head job at `now_ns`: records its response time, jitter and
    /// whether it missed the deadline it was released with, then releases the next job.
    pub fn complete(&mut self, id: ServerId, now_ns: u64) -> Result<Completion, SchedError> {
        self.check_time(now_ns)?;
        let slot = self.slot_of(id)?;
        if self.server_mut(slot).queue.is_empty() {
            return Err(SchedError::NoPendingJob(id));
        }
        self.advance(now_ns);
        let Self {
            slots,
            totals,
            response,
            jitter,
            ..
        } = self;
        let s = slots[slot].as_mut().expect("slot index comes from slot_of");
        let job = s.queue.pop_front().expect("queue checked non-empty");
        let deadline_ns = job.deadline_ns.unwrap_or(s.cbs.deadline_ns());
        let missed = now_ns > deadline_ns;
        let lateness_ns = now_ns.saturating_sub(deadline_ns);
        let response_ns = now_ns - job.arrival_ns;
        s.response.push(response_ns);
        response.push(response_ns);
        if let Some(prev) = s.last_response_ns {
            let j = prev.abs_diff(response_ns);
            s.jitter.push(j);
            jitter.push(j);
        }
        s.last_response_ns = Some(response_ns);
        bump(&mut s.counters, totals, |c| {
            c.jobs_completed = c.jobs_completed.saturating_add(1);
            if missed {
                c.deadline_misses = c.deadline_misses.saturating_add(1);
                c.max_lateness_ns = c.max_lateness_ns.max(lateness_ns);
            }
        });
        s.release_head();
        Ok(Completion {
            job: job.id,
            arrival_ns: job.arrival_ns,
            deadline_ns,
            finish_ns: now_ns,
            response_ns,
            missed,
            lateness_ns,
            tokens: job.tokens,
            consumed_ns: job.consumed_ns,
            steps: job.steps,
        })
    }

    /// The head job of a server (the one `charge`, `record_tokens` and `complete` act on).
    pub fn head_job(&self, id: ServerId) -> Result<Option<Job>, SchedError> {
        let slot = self.slot_of(id)?;
        Ok(self.slots[slot]
            .as_ref()
            .and_then(|s| s.queue.front().copied()))
    }

    /// State and metrics of one server.
    pub fn server_stats(&self, id: ServerId) -> Result<ServerStats, SchedError> {
        let slot = self.slot_of(id)?;
        let s = self.slots[slot]
            .as_ref()
            .ok_or(SchedError::UnknownServer(id))?;
        Ok(ServerStats {
            id: s.id,
            config: s.config,
            utilisation_ppb: s.utilisation_ppb,
            counters: s.counters,
            queue_depth: s.queue.len(),
            max_queue_depth: s.max_depth,
            deadline_ns: s.cbs.deadline_ns(),
            remaining_ns: s.cbs.remaining_ns(),
            throttled_until: s.cbs.throttled_until(),
            quota_used: s.quota.used_at(self.last_ns),
            response: s.response.percentiles(),
            jitter: s.jitter.percentiles(),
        })
    }

    /// Whole-scheduler state and metrics.
    pub fn totals(&self) -> TotalStats {
        let elapsed = self.first_ns.map_or(0, |f| self.last_ns - f);
        let measured_ppb = (elapsed != 0).then(|| {
            let v = u128::from(self.totals.consumed_ns) * u128::from(PPB) / u128::from(elapsed);
            u64::try_from(v).unwrap_or(u64::MAX)
        });
        TotalStats {
            counters: self.totals,
            admission: self.admission,
            servers: self.servers_iter().count(),
            admitted_ppb: self.admitted_ppb(),
            bound_ppb: self.bound_ppb,
            measured_ppb,
            queue_depth: self.servers_iter().map(|s| s.queue.len()).sum(),
            response: self.response.percentiles(),
            jitter: self.jitter.percentiles(),
        }
    }
}
