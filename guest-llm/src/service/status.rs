//! What the service reports: `llmctl status` (model, admission, deadlines, jobs, engine
//! throughput and latency, slack and timer counters, one line per server), `llmctl reset`, and
//! the summary behind the ring's `Status` answer.

use core::fmt::Write;

use guest_rt::timer;
use sis_sched::stats::SampleRing;
use sis_sched::{cycles_to_ns, ServerId, ServerStats};

use super::args::MAX_NAME;
use super::{ServerSettings, Service, DEFAULT_SERVER};
use crate::model;

fn pct(p: Option<sis_sched::Percentiles>) -> (u64, u64) {
    p.map_or((0, 0), |p| (p.p50, p.p99))
}

impl Service {
    /// Prints `llmctl status`.
    pub fn print_status(&self, out: &mut dyn Write) {
        match model::get() {
            Some(l) => {
                let c = &l.model.config;
                let _ = writeln!(
                    out,
                    "model: loaded {} '{}' ({} bytes, dim {}, layers {}, vocab {}, context {}), load {} ms",
                    l.format,
                    l.name,
                    l.file_len,
                    c.dim,
                    c.n_layers,
                    c.vocab_size,
                    c.max_seq_len,
                    cycles_to_ns(l.load_cycles, timer::frequency()).unwrap_or(0) / 1_000_000
                );
            }
            None => {
                let _ = writeln!(out, "model: none (run 'llmctl load')");
            }
        }
        let cost = self.state.lock().cost;
        if let Some(c) = cost {
            let _ = writeln!(
                out,
                "cost per token (measured at load): prefill_us={} decode_us={}",
                c.prefill_ns / 1000,
                c.decode_ns / 1000
            );
        }
        let s = self.session_summary();
        let _ = writeln!(
            out,
            "sessions: open={} max={} context={} kv_kib={} opened={} evicted={}",
            s.open,
            s.max,
            s.context,
            s.kv_bytes / 1024,
            s.opened,
            s.evicted
        );
        // Copy everything out first: the lock masks IRQs, printing must not happen under it.
        let (t, stats) = {
            let st = self.state.lock();
            let sched = &st.sched;
            let stats: heapless::Vec<ServerStats, 8> = sched
                .server_ids()
                .filter_map(|id| sched.server_stats(id).ok())
                .collect();
            (sched.totals(), stats)
        };
        let (jp50, jp99) = pct(t.jitter);
        let (rp50, rp99) = pct(t.response);
        let _ = writeln!(
            out,
            "det_admission_used_ppb={} det_admission_bound_ppb={} det_admission_accepted={} det_admission_rejected={}",
            t.admitted_ppb,
            t.bound_ppb,
            t.admission.accepted,
            t.admission.rejected()
        );
        let _ = writeln!(
            out,
            "deterministic_deadline_miss_count={} deterministic_jitter_p50_ns={jp50} deterministic_jitter_p99_ns={jp99} response_p50_ns={rp50} response_p99_ns={rp99}",
            t.counters.deadline_misses
        );
        let _ = writeln!(
            out,
            "jobs: admitted={} completed={} canceled={} rejected={} (quota {} queue {} invalid {}) queue_depth={} throttles={} overrun_ns={}",
            t.counters.jobs_admitted,
            t.counters.jobs_completed,
            t.counters.jobs_canceled,
            t.counters.jobs_rejected(),
            t.counters.rejected_quota,
            t.counters.rejected_queue_full,
            t.counters.rejected_invalid,
            t.queue_depth,
            t.counters.throttle_events,
            t.counters.overrun_ns
        );
        struct Row {
            id: ServerId,
            name: heapless::String<MAX_NAME>,
            wcet_cycles: u64,
            bg: (u32, u32, u32),
        }
        let (rows, decode, prefill, latency, steps, failures) = {
            let st = self.state.lock();
            let m = &st.metrics;
            let rows: heapless::Vec<Row, 8> = st
                .servers
                .iter()
                .take(8)
                .map(|s| Row {
                    id: s.id,
                    name: s.name.clone(),
                    wcet_cycles: s.wcet_cycles,
                    bg: (
                        s.bg_done,
                        s.bg_failed,
                        s.periodic.as_ref().map_or(0, |p| p.total),
                    ),
                })
                .collect();
            (
                rows,
                (m.decode_tokens, m.decode_passes, m.decode_ns),
                (m.prefill_tokens, m.prefill_ns),
                m.token_ns.percentiles(),
                m.steps,
                m.failures,
            )
        };
        let tps = |tok: u64, ns: u64| (tok * 100_000_000_000).checked_div(ns).unwrap_or(0);
        let dec = tps(decode.1, decode.2);
        let pre = tps(prefill.0, prefill.1);
        let (lp50, lp99) = latency.map_or((0, 0), |p| (p.p50, p.p99));
        let _ = writeln!(
            out,
            "llm_tokens_per_sec={}.{:02} llm_prefill_tokens_per_sec={}.{:02} llm_tokens={} llm_decode_passes={} llm_decode_us={} llm_prefill_tokens={} llm_prefill_us={} llm_token_latency_p50_us={} llm_token_latency_p99_us={} workers={} pool_batches={} pool_busy={} steps={} shell_rejected_lines={}",
            dec / 100,
            dec % 100,
            pre / 100,
            pre % 100,
            decode.0,
            decode.1,
            decode.2 / 1000,
            prefill.0,
            prefill.1 / 1000,
            lp50 / 1000,
            lp99 / 1000,
            crate::parallel::workers_in_use(),
            crate::parallel::stats().0,
            crate::parallel::stats().1,
            steps,
            guest_rt::shell::rejected_lines()
        );
        let (audited, audit_failed) = guest_rt::channel::audit::stats();
        let (slack_steps, slack_ns) = self.slack.reclaimed();
        let _ = writeln!(
            out,
            "slack={} slack_steps={} slack_ms={} budget_timer_expiries={} inbox_full={} failures={} audit_appended={audited} audit_failed={audit_failed}",
            if self.slack() { "on" } else { "off" },
            slack_steps,
            slack_ns / 1_000_000,
            self.budget.expiries(),
            self.inbox.full_count(),
            failures
        );
        for ss in &stats {
            let Some(srv) = rows.iter().find(|s| s.id == ss.id) else {
                continue;
            };
            let (jp50, jp99) = pct(ss.jitter);
            let _ = writeln!(
                out,
                "server {}: wcet_cycles={} budget_ns={} period_ns={} max_tokens_per_period={} util_ppb={} jobs={} done={} rejected={} misses={} throttles={} tokens={} queue={} jitter_p50_ns={jp50} jitter_p99_ns={jp99} bg_done={} bg_failed={} bg_total={}{}",
                srv.name,
                srv.wcet_cycles,
                ss.config.budget_ns,
                ss.config.period_ns,
                ss.config.max_tokens_per_period,
                ss.utilisation_ppb,
                ss.counters.jobs_admitted,
                ss.counters.jobs_completed,
                ss.counters.jobs_rejected(),
                ss.counters.deadline_misses,
                ss.counters.throttle_events,
                ss.counters.tokens,
                ss.queue_depth,
                srv.bg.0,
                srv.bg.1,
                srv.bg.2,
                if ss.throttled_until.is_some() { " throttled" } else { "" }
            );
        }
    }

    /// Clears the engine throughput and latency figures (not the scheduler's counters).
    pub fn reset_metrics(&self) {
        let mut st = self.state.lock();
        let m = &mut st.metrics;
        m.token_ns = SampleRing::new();
        m.decode_tokens = 0;
        m.decode_passes = 0;
        m.decode_ns = 0;
        m.prefill_tokens = 0;
        m.prefill_ns = 0;
    }
}

/// Counters for the ring's `Status` answer.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    /// A model is loaded.
    pub model_loaded: bool,
    /// The default server's settings, if it exists.
    pub default: Option<ServerSettings>,
    /// Jobs queued or running.
    pub jobs: usize,
    /// Tokens generated since boot.
    pub tokens: u64,
    /// Deadline misses since boot.
    pub deadline_misses: u64,
    /// Requests refused since boot (admission, quota, queue).
    pub rejected: u64,
}

impl Service {
    /// The service's state in a few numbers.
    pub fn summary(&self) -> Summary {
        let default = self.server_settings(DEFAULT_SERVER);
        let t = self.state.lock().sched.totals();
        Summary {
            model_loaded: model::get().is_some(),
            default,
            jobs: t.queue_depth,
            tokens: t.counters.tokens,
            deadline_misses: t.counters.deadline_misses,
            rejected: t.counters.jobs_rejected() + t.admission.rejected(),
        }
    }
}
