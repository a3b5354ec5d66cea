//! Server parameters and the utilisation test that admits or rejects them.
//!
//! Utilisation is kept in parts per billion (ppb, 1e9 = 100%). A server's utilisation is
//! `ceil(Q * 1e9 / T)`, computed in 128-bit arithmetic; the admission test is
//! `sum(ceil(Q_i * 1e9 / T_i)) <= bound_ppb`. Rounding each term up makes the test safe (it never
//! admits a set whose exact utilisation is above the bound) and exact whenever each `Q_i / T_i`
//! is a whole number of ppb, so a set exactly at the bound is admitted and one more ns of budget
//! is rejected.

use crate::cycles::cycles_to_ns;
use crate::error::SchedError;

/// 100% utilisation in parts per billion.
pub const PPB: u64 = 1_000_000_000;

/// The default utilisation bound: 85%, as in the original SIS kernel.
pub const DEFAULT_BOUND_PPB: u64 = 850_000_000;

/// Parameters of one constant-bandwidth server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// Budget Q: CPU time the server may use per period, ns.
    pub budget_ns: u64,
    /// Period T, ns; also the relative deadline the server gives its work.
    pub period_ns: u64,
    /// Tokens that may be requested per quota window of length T; 0 means unlimited.
    pub max_tokens_per_period: u32,
}

impl ServerConfig {
    /// A configuration from a budget given in ns.
    pub const fn new(budget_ns: u64, period_ns: u64, max_tokens_per_period: u32) -> Self {
        Self {
            budget_ns,
            period_ns,
            max_tokens_per_period,
        }
    }

    /// A configuration whose budget is `wcet_cycles` timer cycles at `freq_hz`
    /// (`CNTFRQ_EL0`), rounded up to whole ns. The result is validated.
    pub fn from_wcet_cycles(
        wcet_cycles: u64,
        freq_hz: u64,
        period_ns: u64,
        max_tokens_per_period: u32,
    ) -> Result<Self, SchedError> {
        let budget_ns = cycles_to_ns(wcet_cycles, freq_hz)?;
        let cfg = Self::new(budget_ns, period_ns, max_tokens_per_period);
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks period > 0, budget > 0 and budget <= period.
    pub fn validate(&self) -> Result<(), SchedError> {
        if self.period_ns == 0 {
            return Err(SchedError::ZeroPeriod);
        }
        if self.budget_ns == 0 {
            return Err(SchedError::ZeroBudget);
        }
        if self.budget_ns > self.period_ns {
            return Err(SchedError::BudgetExceedsPeriod {
                budget_ns: self.budget_ns,
                period_ns: self.period_ns,
            });
        }
        Ok(())
    }

    /// Utilisation `Q / T` in ppb, rounded up. Call on a validated configuration
    /// (the result is then at most [`PPB`]).
    pub fn utilisation_ppb(&self) -> u64 {
        utilisation_ppb(self.budget_ns, self.period_ns)
    }
}

/// `ceil(budget_ns * 1e9 / period_ns)`, saturating at `u64::MAX` for `period_ns == 0`.
pub fn utilisation_ppb(budget_ns: u64, period_ns: u64) -> u64 {
    if period_ns == 0 {
        return u64::MAX;
    }
    let num = u128::from(budget_ns) * u128::from(PPB);
    u64::try_from(num.div_ceil(u128::from(period_ns))).unwrap_or(u64::MAX)
}

/// Checks that a bound is in `1..=PPB`.
pub fn validate_bound(bound_ppb: u64) -> Result<(), SchedError> {
    if bound_ppb == 0 || bound_ppb > PPB {
        return Err(SchedError::InvalidBound { bound_ppb });
    }
    Ok(())
}

/// The admission test: `others_ppb + requested_ppb <= bound_ppb`, without overflow.
pub fn admit(requested_ppb: u64, others_ppb: u64, bound_ppb: u64) -> Result<(), SchedError> {
    match others_ppb.checked_add(requested_ppb) {
        Some(total) if total <= bound_ppb => Ok(()),
        _ => Err(SchedError::UtilisationExceeded {
            requested_ppb,
            others_ppb,
            bound_ppb,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rules() {
        assert_eq!(
            ServerConfig::new(1, 0, 0).validate(),
            Err(SchedError::ZeroPeriod)
        );
        assert_eq!(
            ServerConfig::new(0, 10, 0).validate(),
            Err(SchedError::ZeroBudget)
        );
        assert_eq!(
            ServerConfig::new(11, 10, 0).validate(),
            Err(SchedError::BudgetExceedsPeriod {
                budget_ns: 11,
                period_ns: 10
            })
        );
        assert_eq!(ServerConfig::new(10, 10, 0).validate(), Ok(()));
    }

    #[test]
    fn utilisation_rounds_up() {
        assert_eq!(utilisation_ppb(85, 100), 850_000_000);
        assert_eq!(utilisation_ppb(1, 3), 333_333_334);
        assert_eq!(utilisation_ppb(u64::MAX, u64::MAX), PPB);
        // One ns above an exact value always moves to the next ppb, however long the period.
        let t = 1_000_000_000_000;
        assert_eq!(utilisation_ppb(t / 2, t), 500_000_000);
        assert_eq!(utilisation_ppb(t / 2 + 1, t), 500_000_001);
    }

    #[test]
    fn from_wcet_cycles_converts_and_validates() {
        let cfg = ServerConfig::from_wcet_cycles(25_000, 62_500_000, 1_000_000_000, 8).unwrap();
        assert_eq!(cfg.budget_ns, 400_000);
        assert_eq!(
            ServerConfig::from_wcet_cycles(25_000, 62_500_000, 399_999, 8),
            Err(SchedError::BudgetExceedsPeriod {
                budget_ns: 400_000,
                period_ns: 399_999
            })
        );
        assert_eq!(
            ServerConfig::from_wcet_cycles(1, 0, 10, 0),
            Err(SchedError::ZeroFrequency)
        );
        assert!(matches!(
            ServerConfig::from_wcet_cycles(u64::MAX, 62_500_000, u64::MAX, 0),
            Err(SchedError::ConversionOverflow { .. })
        ));
    }

    #[test]
    fn admit_at_bound_and_just_over() {
        assert_eq!(admit(350_000_000, 500_000_000, DEFAULT_BOUND_PPB), Ok(()));
        assert!(admit(350_000_001, 500_000_000, DEFAULT_BOUND_PPB).is_err());
        assert!(admit(u64::MAX, 1, u64::MAX).is_err());
        assert_eq!(
            validate_bound(0),
            Err(SchedError::InvalidBound { bound_ppb: 0 })
        );
        assert!(validate_bound(PPB + 1).is_err());
        assert_eq!(validate_bound(PPB), Ok(()));
    }
}
