//! The default server's budget from what a token costs on this machine (pure, host tested).
//!
//! `llmctl load` (and a ring `Load` without a WCET) measures the cost of a prefill step and of
//! one decode pass of the loaded model (`load::measure_cost`), and the default server gets a
//! budget that covers a reference job, [`REFERENCE_PROMPT_TOKENS`] prompt tokens and
//! [`REFERENCE_NEW_TOKENS`] new ones, [`MARGIN`] times over, at [`UTILISATION_PERCENT`] of the
//! CPU (the rest stays admissible for other servers under the 85% bound). A job no larger than
//! the reference that arrives at an idle server is then served within its deadline (the
//! server's period, see docs/llm-service.md "Deadlines and budgets").

/// Prompt tokens of the reference job (a chat turn of a few sentences with its template).
pub const REFERENCE_PROMPT_TOKENS: u64 = 64;
/// New tokens of the reference job (`datactl llm-infer`'s default; the shell's is 8).
pub const REFERENCE_NEW_TOKENS: u64 = 32;
/// Head room over the measured cost: a step measured on an idle machine costs more when the
/// host is busy (under emulation the guest's clock is the host's).
pub const MARGIN: u64 = 2;
/// Share of the CPU the default server reserves (budget / period).
pub const UTILISATION_PERCENT: u64 = 50;
/// Smallest budget, 250 ms: 25 timer ticks (the loop notices an exhausted slice at the 100 Hz
/// tick) and room for what the job's deadline includes besides its steps (admission, the
/// loop's other work, a busy host delaying the emulated guest).
pub const MIN_BUDGET_NS: u64 = 250_000_000;

/// What a token costs on this machine, measured at load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenCost {
    /// One prompt token in a prefill step, ns.
    pub prefill_ns: u64,
    /// One decode pass (a generated token), ns.
    pub decode_ns: u64,
}

/// Budget and period of the default server, ns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Derived {
    /// Budget `Q` per period.
    pub budget_ns: u64,
    /// Period `T` (also the relative deadline of a job arriving at an idle server).
    pub period_ns: u64,
}

/// The default server's budget for `cost`: [`MARGIN`] x the reference job, at least
/// [`MIN_BUDGET_NS`], rounded up to whole ms; the period makes it [`UTILISATION_PERCENT`] of
/// the CPU.
pub fn derive(cost: TokenCost) -> Derived {
    let job = REFERENCE_PROMPT_TOKENS
        .saturating_mul(cost.prefill_ns)
        .saturating_add(REFERENCE_NEW_TOKENS.saturating_mul(cost.decode_ns));
    let ms = 1_000_000;
    let budget_ns = job
        .saturating_mul(MARGIN)
        .max(MIN_BUDGET_NS)
        .div_ceil(ms)
        .saturating_mul(ms);
    Derived {
        budget_ns,
        period_ns: budget_ns.saturating_mul(100) / UTILISATION_PERCENT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_covers_the_reference_job_twice_at_half_the_cpu() {
        // SmolLM2-135M under emulation: about 0.6 s per token.
        let d = derive(TokenCost {
            prefill_ns: 600_000_000,
            decode_ns: 650_000_000,
        });
        assert_eq!(d.budget_ns, 2 * (64 * 600_000_000 + 32 * 650_000_000));
        assert_eq!(d.period_ns, 2 * d.budget_ns);
        // A job of the reference size fits the budget once, with the margin to spare.
        assert!(64 * 600_000_000 + 32 * 650_000_000 <= d.budget_ns / MARGIN);
    }

    #[test]
    fn tiny_costs_get_the_floor_and_whole_milliseconds() {
        let d = derive(TokenCost {
            prefill_ns: 1_000,
            decode_ns: 2_000,
        });
        assert_eq!(
            d,
            Derived {
                budget_ns: MIN_BUDGET_NS,
                period_ns: 2 * MIN_BUDGET_NS
            }
        );
        let d = derive(TokenCost {
            prefill_ns: 1_000_001,
            decode_ns: 1_000_000,
        });
        assert_eq!(d.budget_ns % 1_000_000, 0);
        assert!(d.budget_ns >= 2 * (64 * 1_000_001 + 32 * 1_000_000));
    }

    #[test]
    fn absurd_costs_saturate_instead_of_wrapping() {
        let d = derive(TokenCost {
            prefill_ns: u64::MAX,
            decode_ns: u64::MAX,
        });
        assert!(d.budget_ns >= u64::MAX - 1_000_000);
        assert!(d.period_ns > 0);
    }
}
