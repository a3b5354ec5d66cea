//! The budget/deadline state machine of one hard constant-bandwidth server.
//!
//! Rules (Q = budget, T = period, c = remaining budget, d = scheduling deadline):
//! - **Arrival at an idle server** (no queued job, not throttled) at time `t`: if
//!   `c * T >= (d - t) * Q` (always true when `d <= t`), the server takes a new deadline
//!   `d = t + T` and a full budget `c = Q`; otherwise it keeps `(c, d)`.
//! - **Execution**: every ns the server runs is charged to `c`.
//! - **Exhaustion** (`c` reaches 0): `d += T`, `c = Q`, and the server is *throttled* until the
//!   replenishment time `d - T` (the old deadline): hard reservation. A charge larger than `c`
//!   (the step overran its slice) is a debt paid from the following budgets, postponing `d` by
//!   one more period per whole `Q` of debt.
//!
//! All comparisons are exact 128-bit products; deadlines saturate at `u64::MAX` ns.

use crate::admission::ServerConfig;

/// What a charge did to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChargeEffect {
    /// The budget was exhausted and the server is throttled until this time (ns).
    pub throttled_until: Option<u64>,
    /// ns charged beyond the remaining budget (how late enforcement was).
    pub overrun_ns: u64,
}

/// CBS budget and deadline of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cbs {
    budget_ns: u64,
    period_ns: u64,
    remaining_ns: u64,
    deadline_ns: u64,
    throttled_until: Option<u64>,
}

impl Cbs {
    /// A server that has never run: no budget, deadline 0, so its first arrival always takes a
    /// fresh `(t + T, Q)`. `cfg` must be validated.
    pub const fn new(cfg: &ServerConfig) -> Self {
        Self {
            budget_ns: cfg.budget_ns,
            period_ns: cfg.period_ns,
            remaining_ns: 0,
            deadline_ns: 0,
            throttled_until: None,
        }
    }

    /// Remaining budget c, ns.
    pub const fn remaining_ns(&self) -> u64 {
        self.remaining_ns
    }

    /// Current scheduling deadline d, absolute ns.
    pub const fn deadline_ns(&self) -> u64 {
        self.deadline_ns
    }

    /// Replenishment time while throttled.
    pub const fn throttled_until(&self) -> Option<u64> {
        self.throttled_until
    }

    /// Applies the arrival rule for a job arriving at `now_ns` while no job is queued.
    /// A throttled server keeps its state: it was refilled when it was throttled.
    pub fn on_arrival_idle(&mut self, now_ns: u64) {
        if self.throttled_until.is_some() {
            return;
        }
        let lhs = u128::from(self.remaining_ns) * u128::from(self.period_ns);
        let rhs = u128::from(self.deadline_ns.saturating_sub(now_ns)) * u128::from(self.budget_ns);
        if lhs >= rhs {
            self.deadline_ns = now_ns.saturating_add(self.period_ns);
            self.remaining_ns = self.budget_ns;
        }
    }

    /// Charges `ns` of execution; on exhaustion postpones the deadline, refills and throttles.
    pub fn charge(&mut self, ns: u64) -> ChargeEffect {
        if ns < self.remaining_ns {
            self.remaining_ns -= ns;
            return ChargeEffect {
                throttled_until: None,
                overrun_ns: 0,
            };
        }
        let debt = ns - self.remaining_ns;
        // One period for the exhaustion itself, one more for each whole budget of debt.
        let periods = 1 + u128::from(debt / self.budget_ns);
        self.remaining_ns = self.budget_ns - debt % self.budget_ns;
        let shift = periods * u128::from(self.period_ns);
        let deadline = u128::from(self.deadline_ns) + shift;
        // Computed before clamping, so a saturated deadline still throttles (until u64::MAX).
        let release = u64::try_from(deadline - u128::from(self.period_ns)).unwrap_or(u64::MAX);
        self.deadline_ns = u64::try_from(deadline).unwrap_or(u64::MAX);
        self.throttled_until = Some(release);
        ChargeEffect {
            throttled_until: Some(release),
            overrun_ns: debt,
        }
    }

    /// Ends the throttle if its replenishment time has come; returns whether it did.
    pub fn release_if_due(&mut self, now_ns: u64) -> bool {
        match self.throttled_until {
            Some(at) if at <= now_ns => {
                self.throttled_until = None;
                true
            }
            _ => false,
        }
    }

    /// Applies new parameters: the remaining budget is cut to the new Q, the deadline and any
    /// throttle are kept. The new Q and T take full effect from the next replenishment.
    pub fn reconfigure(&mut self, cfg: &ServerConfig) {
        self.budget_ns = cfg.budget_ns;
        self.period_ns = cfg.period_ns;
        self.remaining_ns = self.remaining_ns.min(cfg.budget_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cbs(q: u64, t: u64) -> Cbs {
        Cbs::new(&ServerConfig::new(q, t, 0))
    }

    #[test]
    fn first_arrival_gets_fresh_budget_and_deadline() {
        let mut s = cbs(30, 100);
        s.on_arrival_idle(1_000);
        assert_eq!((s.remaining_ns(), s.deadline_ns()), (30, 1_100));
    }

    #[test]
    fn arrival_keeps_state_when_budget_is_too_large_for_the_time_left() {
        // Q=50, T=100: job used 40 of 50 by t=40, c=10, d=100.
        let mut s = cbs(50, 100);
        s.on_arrival_idle(0);
        assert_eq!(s.charge(40).throttled_until, None);
        // At t=70: (100-70)*50/100 = 15 > 10: the remaining budget is usable, keep (10, 100).
        s.on_arrival_idle(70);
        assert_eq!((s.remaining_ns(), s.deadline_ns()), (10, 100));
        // At t=80: (100-80)*50/100 = 10 <= 10: exactly at the limit, renew.
        s.on_arrival_idle(80);
        assert_eq!((s.remaining_ns(), s.deadline_ns()), (50, 180));
    }

    #[test]
    fn exhaustion_postpones_refills_and_throttles_until_old_deadline() {
        let mut s = cbs(30, 100);
        s.on_arrival_idle(0);
        let e = s.charge(30);
        assert_eq!(e.throttled_until, Some(100));
        assert_eq!(e.overrun_ns, 0);
        assert_eq!((s.remaining_ns(), s.deadline_ns()), (30, 200));
        assert!(!s.release_if_due(99));
        assert!(s.release_if_due(100));
        assert_eq!(s.throttled_until(), None);
    }

    #[test]
    fn overrun_is_a_debt_paid_from_later_periods() {
        let mut s = cbs(30, 100);
        s.on_arrival_idle(0);
        // 30 budget + 70 debt: 70 = 2*30 + 10 -> three periods postponed, c = 20.
        let e = s.charge(100);
        assert_eq!(e.overrun_ns, 70);
        assert_eq!((s.remaining_ns(), s.deadline_ns()), (20, 400));
        assert_eq!(s.throttled_until(), Some(300));
        // Debt of exactly one budget.
        let mut s = cbs(30, 100);
        s.on_arrival_idle(0);
        s.charge(60);
        assert_eq!((s.remaining_ns(), s.deadline_ns()), (30, 300));
    }

    #[test]
    fn arrival_while_throttled_changes_nothing() {
        let mut s = cbs(30, 100);
        s.on_arrival_idle(0);
        s.charge(30);
        let before = s;
        s.on_arrival_idle(50);
        assert_eq!(s, before);
    }

    #[test]
    fn deadline_saturates_instead_of_wrapping() {
        let mut s = cbs(1, u64::MAX);
        s.on_arrival_idle(10);
        assert_eq!(s.deadline_ns(), u64::MAX);
        s.charge(1);
        assert_eq!(s.deadline_ns(), u64::MAX);
        assert_eq!(s.throttled_until(), Some(u64::MAX));
    }

    #[test]
    fn reconfigure_never_grows_the_current_budget() {
        let mut s = cbs(50, 100);
        s.on_arrival_idle(0);
        s.reconfigure(&ServerConfig::new(20, 40, 0));
        assert_eq!((s.remaining_ns(), s.deadline_ns()), (20, 100));
        s.reconfigure(&ServerConfig::new(90, 100, 0));
        assert_eq!(s.remaining_ns(), 20);
    }
}
