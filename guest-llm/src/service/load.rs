//! Loading the model and setting up the default server, with a budget derived from the cost per
//! token measured right after the load ([`super::calibration`]). Audited as op 1 (load).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use guest_rt::timer;
use shared_ring::audit::{AuditEntry, Op};
use sis_engine::{SamplerConfig, Session, SessionConfig};
use sis_platform::BootInfo;
use sis_sched::{cycles_to_ns, ns_to_cycles};

use super::calibration::{self, TokenCost};
use super::conversation;
use super::{audit, ServerSettings, Service, DEFAULT_PERIOD_NS, DEFAULT_SERVER, PREFILL_CHUNK};
use crate::model::{self, Loaded};
use crate::parallel::POOL;

/// Text whose first tokens the measurement prefills (a warm-up step, then [`PREFILL_CHUNK`]).
const PROBE: &str =
    "The cost of one token on this machine, measured at load time, sets the budget.";
/// Tokens of the warm-up step: any forward pass touches every weight.
const WARM_TOKENS: usize = 2;

/// Times one prefill step of [`PREFILL_CHUNK`] tokens and one decode pass of the loaded model,
/// with the service's workers (what a job's steps cost now). A first prefill step warms up
/// (the first touch of the weights after a load is several times slower) and is not counted.
fn measure_cost(loaded: &Loaded) -> Result<TokenCost, String> {
    let mut prompt = loaded.tokenizer.encode_prompt(PROBE);
    prompt.truncate(WARM_TOKENS + PREFILL_CHUNK);
    if prompt.len() < 2 {
        return Err("the probe text encodes to fewer than 2 tokens".into());
    }
    // A tokenizer that packs the probe into fewer tokens gets a shorter measured step.
    let warm = if prompt.len() > PREFILL_CHUNK {
        prompt.len() - PREFILL_CHUNK
    } else {
        prompt.len() / 2
    };
    let measured = prompt.len() - warm;
    let cfg = SessionConfig {
        context: prompt.len() + 2,
        max_new_tokens: 2,
        sampler: SamplerConfig::default(),
        // No stop token: the second token always runs a forward pass.
        stop_tokens: Vec::new(),
    };
    let mut s = Session::new(&loaded.model, &POOL, cfg).map_err(|e| format!("{e}"))?;
    s.feed(&prompt).map_err(|e| format!("{e}"))?;
    let freq = timer::frequency();
    let ns = |c: u64| cycles_to_ns(c, freq).unwrap_or(u64::MAX);
    s.prefill(warm).map_err(|e| format!("{e}"))?;
    let t0 = timer::counter();
    s.prefill(measured).map_err(|e| format!("{e}"))?;
    let t1 = timer::counter();
    // The first token is sampled from the prefill's logits; the second needs a pass.
    s.next_token().map_err(|e| format!("{e}"))?;
    let t2 = timer::counter();
    s.next_token().map_err(|e| format!("{e}"))?;
    let t3 = timer::counter();
    Ok(TokenCost {
        prefill_ns: ns(t1.wrapping_sub(t0)) / measured as u64,
        decode_ns: ns(t3.wrapping_sub(t2)).max(1),
    })
}

impl Service {
    /// Loads the model (see [`model::load`]), measures what a token costs and sets up the
    /// default server: with `wcet_cycles` that budget (a new server's period:
    /// [`DEFAULT_PERIOD_NS`]); otherwise a new server gets the budget
    /// and period derived from the measured cost ([`calibration::derive`]) and an existing one
    /// keeps its settings.
    ///
    /// # Errors
    /// The loader's or the scheduler's message; the model stays as it was.
    pub fn load(
        &self,
        info: &BootInfo,
        wcet_cycles: Option<u64>,
        out: &mut dyn Write,
    ) -> Result<(), String> {
        let current = self.server_settings(DEFAULT_SERVER);
        let mut entry = AuditEntry {
            op: Op::Load as u16,
            wcet_cycles: wcet_cycles.or(current.map(|c| c.wcet_cycles)).unwrap_or(0),
            period_ns: current.map_or(0, |c| c.period_ns),
            ..AuditEntry::default()
        };
        let res = model::load(info, out).and_then(|loaded| {
            let cost = measure_cost(loaded).map_err(|e| format!("measuring the cost per token: {e}"))?;
            let (sessions, context, kv) = conversation::bounds(loaded);
            {
                let mut st = self.state.lock();
                st.cost = Some(cost);
                st.sessions.set_capacity(sessions);
                st.session_context = context;
                st.session_kv_bytes = kv;
            }
            let _ = writeln!(
                out,
                "llmctl load: conversations: up to {sessions} of {context} tokens ({} KiB of KV cache each)",
                kv / 1024
            );
            let _ = writeln!(
                out,
                "llmctl load: cost per token on this machine: prefill {} us, decode {} us",
                cost.prefill_ns / 1000,
                cost.decode_ns / 1000
            );
            let settings = match (wcet_cycles, current) {
                (Some(w), c) => ServerSettings {
                    wcet_cycles: w,
                    period_ns: c.map_or(DEFAULT_PERIOD_NS, |c| c.period_ns),
                    max_tokens: c.map_or(0, |c| c.max_tokens),
                },
                (None, Some(c)) => c,
                (None, None) => {
                    let d = calibration::derive(cost);
                    let _ = writeln!(
                        out,
                        "llmctl load: budget derived: {} x ({} prompt + {} new tokens) = {} us per {} us",
                        calibration::MARGIN,
                        calibration::REFERENCE_PROMPT_TOKENS,
                        calibration::REFERENCE_NEW_TOKENS,
                        d.budget_ns / 1000,
                        d.period_ns / 1000
                    );
                    ServerSettings {
                        wcet_cycles: ns_to_cycles(d.budget_ns, timer::frequency())
                            .map_err(|e| format!("{e}"))?,
                        period_ns: d.period_ns,
                        max_tokens: 0,
                    }
                }
            };
            entry.wcet_cycles = settings.wcet_cycles;
            entry.period_ns = settings.period_ns;
            if current == Some(settings) {
                return Ok(());
            }
            self.apply_settings(DEFAULT_SERVER, settings)
                .map_err(|e| format!("server '{DEFAULT_SERVER}': {e}"))
        });
        audit::outcome(entry, res.is_ok());
        res
    }
}
