//! The per-server token quota.
//!
//! Time is cut into fixed windows of one server period T, anchored where the quota was created:
//! `[start + k*T, start + (k+1)*T)`. A job asks for `max_tokens` at submission; it is admitted
//! only if `used + max_tokens <= max_tokens_per_period`, where `used` is the sum of the
//! `max_tokens` of the jobs already admitted in the window that contains the submission time.
//! The reservation is made at submission and is not refunded when a job ends early or is
//! cancelled. A limit of 0 means unlimited (tokens are still counted).

use crate::error::SchedError;

/// Token reservations of one server in its current quota window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenQuota {
    limit: u32,
    window_ns: u64,
    window_start_ns: u64,
    used: u64,
}

impl TokenQuota {
    /// A quota of `limit` tokens (0 = unlimited) per window of `window_ns` (> 0), starting at
    /// `now_ns`.
    pub const fn new(limit: u32, window_ns: u64, now_ns: u64) -> Self {
        Self {
            limit,
            window_ns,
            window_start_ns: now_ns,
            used: 0,
        }
    }

    /// The limit per window (0 = unlimited).
    pub const fn limit(&self) -> u32 {
        self.limit
    }

    /// Start of the window that contains `now_ns` (never before the current window).
    fn window_at(&self, now_ns: u64) -> u64 {
        let elapsed = now_ns.saturating_sub(self.window_start_ns);
        let whole = elapsed - elapsed % self.window_ns;
        self.window_start_ns.saturating_add(whole)
    }

    /// Tokens reserved in the window containing `now_ns`.
    pub fn used_at(&self, now_ns: u64) -> u64 {
        if self.window_at(now_ns) == self.window_start_ns {
            self.used
        } else {
            0
        }
    }

    /// Checks a request of `tokens` at `now_ns` without reserving anything.
    pub fn check(&self, now_ns: u64, tokens: u32) -> Result<(), SchedError> {
        let used = self.used_at(now_ns);
        if self.limit != 0 && used + u64::from(tokens) > u64::from(self.limit) {
            return Err(SchedError::QuotaExceeded {
                requested: tokens,
                used,
                limit: self.limit,
            });
        }
        Ok(())
    }

    /// Reserves `tokens` at `now_ns`; call only after [`TokenQuota::check`] succeeded.
    pub fn reserve(&mut self, now_ns: u64, tokens: u32) {
        let used = self.used_at(now_ns);
        self.window_start_ns = self.window_at(now_ns);
        self.used = used.saturating_add(u64::from(tokens));
    }

    /// Applies a new limit and window length; the current window keeps its start and its
    /// reservations, and the new limit applies to it at once.
    pub fn reconfigure(&mut self, limit: u32, window_ns: u64, now_ns: u64) {
        let used = self.used_at(now_ns);
        self.window_start_ns = self.window_at(now_ns);
        self.used = used;
        self.limit = limit;
        self.window_ns = window_ns;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_tokens_per_period_then_reject() {
        let mut q = TokenQuota::new(8, 1_000, 0);
        q.check(10, 8).unwrap();
        q.reserve(10, 8);
        assert_eq!(
            q.check(20, 1),
            Err(SchedError::QuotaExceeded {
                requested: 1,
                used: 8,
                limit: 8
            })
        );
        // Last ns of the window still counts; the next window starts empty.
        assert!(q.check(999, 1).is_err());
        assert_eq!(q.check(1_000, 8), Ok(()));
    }

    #[test]
    fn partial_reservations_add_up() {
        let mut q = TokenQuota::new(8, 100, 50);
        q.reserve(50, 3);
        q.reserve(60, 5);
        assert!(q.check(149, 1).is_err());
        // Windows are anchored at 50: [50,150), [150,250), ...
        assert_eq!(q.used_at(150), 0);
        q.reserve(420, 2);
        assert_eq!(q.used_at(449), 2);
        assert_eq!(q.used_at(450), 0);
    }

    #[test]
    fn one_request_larger_than_the_limit_is_rejected() {
        let q = TokenQuota::new(8, 100, 0);
        assert!(q.check(0, 9).is_err());
    }

    #[test]
    fn zero_limit_is_unlimited() {
        let mut q = TokenQuota::new(0, 100, 0);
        q.reserve(0, u32::MAX);
        q.reserve(0, u32::MAX);
        assert_eq!(q.check(1, u32::MAX), Ok(()));
        assert_eq!(q.used_at(1), 2 * u64::from(u32::MAX));
    }

    #[test]
    fn reconfigure_keeps_reservations_of_the_current_window() {
        let mut q = TokenQuota::new(8, 100, 0);
        q.reserve(10, 6);
        q.reconfigure(4, 1_000, 20);
        assert!(q.check(30, 1).is_err());
        assert_eq!(q.check(1_000, 4), Ok(()));
    }
}
