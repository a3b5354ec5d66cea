//! One step of one job: a prefill chunk (up to [`PREFILL_CHUNK`] prompt tokens, fewer when the
//! measured prefill cost says they would not fit the slice) or one generated token; its real
//! length is charged to the server (or counted as reclaimed idle time), and a job that ends is
//! completed, audited and reported to its sink.

use alloc::format;
use alloc::vec::Vec;

use guest_rt::timer;
use shared_ring::audit::{AuditEntry, STATUS_DEADLINE_MISS, STATUS_OK};
use sis_engine::{Session, StopReason};
use sis_sched::{cycles_to_ns, ns_to_cycles, JobId, ServerId};

use super::conversation::Turn;
use super::reply_text::ReplyText;
use super::request::{JobError, JobKind, ReplySink, Report};
use super::{audit, now_ns, Service, PREFILL_CHUNK};
use crate::model::Loaded;

/// A job being executed.
pub(super) struct Job {
    pub(super) id: JobId,
    pub(super) server: ServerId,
    pub(super) tag: u64,
    pub(super) kind: JobKind,
    pub(super) sink: &'static dyn ReplySink,
    pub(super) session: Session<'static, 'static>,
    pub(super) loaded: &'static Loaded,
    /// The last token fed or generated (the tokenizer decodes relative to it).
    pub(super) prev: Option<u32>,
    /// The reply's text as the sink may see it (whole characters, stop strings held back).
    pub(super) text: ReplyText,
    pub(super) prompt_tokens: u32,
    pub(super) max_tokens: u32,
    /// Time spent in its prefill steps, ns.
    pub(super) prefill_ns: u64,
    /// Forward passes of its generated tokens and their time, ns.
    pub(super) decode_passes: u32,
    pub(super) decode_ns: u64,
    /// The conversation turn it is, if any, and the ids it generated (the reply the
    /// conversation keeps).
    pub(super) turn: Option<Turn>,
    pub(super) ids: Vec<u32>,
    /// Prompt tokens the conversation's KV cache already held.
    pub(super) reused: u32,
    /// When it was admitted, and when its first token came (0: not yet), ns.
    pub(super) admitted_ns: u64,
    pub(super) first_token_ns: u64,
}

impl Job {
    /// Counts one forward pass of a generated token (the generation speed and latency figures).
    fn count_pass(&mut self, m: &mut super::state::Metrics, ns: u64) {
        m.decode_passes += 1;
        m.decode_ns += ns;
        m.token_ns.push(ns);
        self.decode_passes += 1;
        self.decode_ns += ns;
    }
}

/// Why a job ended, as its report says: the engine's reasons, or a stop string.
const STOP_STRING: &str = "stop string";

fn stop_label(reason: StopReason) -> &'static str {
    match reason {
        StopReason::StopToken => "stop token",
        StopReason::MaxTokens => "max tokens",
        StopReason::ContextFull => "context full",
    }
}

enum Step {
    Prefill(usize),
    Token(u32),
    Stopped(StopReason),
}

impl Service {
    /// Prompt tokens for the next prefill step: as many as fit the slice at the measured
    /// prefill cost per token, between 1 and [`PREFILL_CHUNK`] (the full chunk before any
    /// measurement).
    fn prefill_chunk(&self, slice_ns: u64) -> usize {
        let (tokens, ns) = {
            let st = self.state.lock();
            (st.metrics.prefill_tokens, st.metrics.prefill_ns)
        };
        match ns.checked_div(tokens) {
            Some(per_token) if per_token > 0 => {
                (slice_ns / per_token).clamp(1, PREFILL_CHUNK as u64) as usize
            }
            _ => PREFILL_CHUNK,
        }
    }

    /// Runs one step of the job the scheduler picked (`charged`), or of a throttled job in idle
    /// time (not charged to its budget).
    pub(super) fn run_step(&self, server: ServerId, job_id: JobId, slice_ns: u64, charged: bool) {
        let taken = {
            let mut st = self.state.lock();
            st.jobs
                .iter()
                .position(|j| j.id == job_id)
                .map(|i| st.jobs.swap_remove(i))
        };
        let Some(mut job) = taken else {
            // The scheduler knows a job the service lost: cancel it so it cannot block the
            // server.
            let mut st = self.state.lock();
            let _ = st.sched.cancel(server, job_id, now_ns());
            st.metrics.failures += 1;
            return;
        };
        let freq = timer::frequency();
        let t0 = timer::counter();
        self.budget
            .start(t0.saturating_add(ns_to_cycles(slice_ns, freq).unwrap_or(u64::MAX)));
        let pass = job.session.next_token_runs_forward();
        let result = if job.session.pending() > 0 {
            let before = job.session.pending();
            job.session
                .prefill(self.prefill_chunk(slice_ns))
                .map(|left| Step::Prefill(before - left))
        } else {
            job.session.next_token().map(|t| match t {
                Some(id) => Step::Token(id),
                None => Step::Stopped(job.session.stop_reason().unwrap_or(StopReason::MaxTokens)),
            })
        };
        let t1 = timer::counter();
        self.budget.stop();
        let elapsed_ns = cycles_to_ns(t1.wrapping_sub(t0), freq).unwrap_or(u64::MAX);
        let now = now_ns();
        if charged {
            let mut st = self.state.lock();
            if st.sched.charge(server, elapsed_ns, now).is_err() {
                st.metrics.failures += 1;
            }
        } else {
            self.slack.count(elapsed_ns);
        }
        let mut st = self.state.lock();
        st.metrics.steps += 1;
        match result {
            Ok(Step::Prefill(n)) => {
                st.metrics.prefill_tokens += n as u64;
                st.metrics.prefill_ns += elapsed_ns;
                job.prefill_ns += elapsed_ns;
                st.jobs.push(job);
            }
            Ok(Step::Token(id)) => {
                st.metrics.decode_tokens += 1;
                if pass {
                    job.count_pass(&mut st.metrics, elapsed_ns);
                }
                let _ = st.sched.record_tokens(server, 1);
                drop(st);
                let mut bytes = Vec::new();
                job.loaded.tokenizer.decode(job.prev, id, &mut bytes);
                job.prev = Some(id);
                let text = job.text.push(&bytes);
                if job.turn.is_some() {
                    job.ids.push(id);
                }
                if job.first_token_ns == 0 {
                    job.first_token_ns = now.max(1);
                }
                job.sink.token(job.tag, id, &text);
                if job.text.stopped() {
                    self.finish(job, server, STOP_STRING, now);
                } else if job.session.generated() >= job.max_tokens as usize {
                    self.finish(job, server, stop_label(StopReason::MaxTokens), now);
                } else {
                    self.state.lock().jobs.push(job);
                }
            }
            Ok(Step::Stopped(reason)) => {
                // A pass that sampled the stop token still counts towards the generation speed.
                if pass {
                    job.count_pass(&mut st.metrics, elapsed_ns);
                }
                drop(st);
                self.finish(job, server, stop_label(reason), now);
            }
            Err(e) => {
                st.metrics.failures += 1;
                let _ = st.sched.cancel(server, job.id, now);
                drop(st);
                audit::reject(AuditEntry {
                    op: job.kind.op() as u16,
                    prompt_len: job.prompt_tokens,
                    tokens: job.session.generated() as u32,
                    extra: job.id.0,
                    ..AuditEntry::default()
                });
                let (sink, tag) = (job.sink, job.tag);
                self.release(job, false);
                sink.failed(tag, &JobError::Internal(format!("{e}")));
            }
        }
    }

    /// Completes a job that ended (audited as its op, with the deadline-miss bit if it finished
    /// late) and reports it to its sink.
    fn finish(&self, mut job: Job, server: ServerId, stop: &'static str, now: u64) {
        let (done, wcet, period) = {
            let mut st = self.state.lock();
            let done = st.sched.complete(server, now);
            let (wcet, period) = st
                .servers
                .iter()
                .find(|s| s.id == server)
                .map_or((0, 0), |s| (s.wcet_cycles, s.period_ns));
            (done, wcet, period)
        };
        let tokens = job.session.generated() as u32;
        let c = match done {
            Ok(c) => c,
            Err(e) => {
                self.failed_internally();
                let (sink, tag) = (job.sink, job.tag);
                self.release(job, false);
                sink.failed(tag, &JobError::Internal(format!("completing: {e}")));
                return;
            }
        };
        let status = STATUS_OK | if c.missed { STATUS_DEADLINE_MISS } else { 0 };
        audit::record(AuditEntry {
            op: job.kind.op() as u16,
            status,
            prompt_len: job.prompt_tokens,
            tokens,
            wcet_cycles: wcet,
            period_ns: period,
            extra: job.id.0,
        });
        let report = Report {
            job: job.id.0,
            tokens,
            prompt_tokens: job.prompt_tokens,
            response_ns: c.response_ns,
            consumed_ns: c.consumed_ns,
            steps: c.steps,
            prefill_ns: job.prefill_ns,
            reused: job.reused,
            session: job.turn.as_ref().map(|t| t.id),
            ttft_ns: job.first_token_ns.saturating_sub(job.admitted_ns),
            decode_passes: job.decode_passes,
            decode_ns: job.decode_ns,
            due_ns: c.deadline_ns.saturating_sub(c.arrival_ns),
            missed: c.missed,
            lateness_ns: c.lateness_ns,
            stop,
            tail: job.text.finish(),
        };
        let (sink, tag) = (job.sink, job.tag);
        // The conversation is back in the table before anyone hears the turn is over.
        self.release(job, true);
        sink.finished(tag, &report);
    }

    /// A job is over: a conversation turn goes back to its conversation (`completed`: with
    /// its reply), anything else is dropped.
    pub(super) fn release(&self, job: Job, completed: bool) {
        if let Some(turn) = job.turn {
            self.end_turn(turn, job.session, &job.ids, completed);
        }
    }
}
