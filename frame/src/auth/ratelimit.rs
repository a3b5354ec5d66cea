//! Rate limiting of failed authorization attempts.
//!
//! After `max_failures` failures within `window_ms`, every request (even one with a valid
//! token) is refused for a back-off period. The first back-off lasts `base_backoff_ms`; each
//! further lock-out doubles it, up to `max_backoff_ms`. A successful authorization resets the
//! doubling. Time is supplied by the caller as a monotonic millisecond count; a clock that
//! goes backwards is treated as not having moved.

/// Largest supported `max_failures` (size of the failure-time ring).
pub const MAX_TRACKED_FAILURES: usize = 16;

/// Rate limiter settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Failures within the window that trigger a lock-out, `1..=16`.
    pub max_failures: u8,
    /// Sliding window length in milliseconds (at least 1).
    pub window_ms: u64,
    /// First lock-out length in milliseconds (at least 1).
    pub base_backoff_ms: u64,
    /// Longest lock-out in milliseconds (at least `base_backoff_ms`).
    pub max_backoff_ms: u64,
}

impl RateLimitConfig {
    /// 5 failures within 10 s lock out for 1 s, doubling up to 60 s.
    pub const DEFAULT: RateLimitConfig = RateLimitConfig {
        max_failures: 5,
        window_ms: 10_000,
        base_backoff_ms: 1_000,
        max_backoff_ms: 60_000,
    };

    /// Check the settings; the error names the bad field.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.max_failures == 0 || usize::from(self.max_failures) > MAX_TRACKED_FAILURES {
            return Err("max_failures must be in 1..=16");
        }
        if self.window_ms == 0 {
            return Err("window_ms must be at least 1");
        }
        if self.base_backoff_ms == 0 {
            return Err("base_backoff_ms must be at least 1");
        }
        if self.max_backoff_ms < self.base_backoff_ms {
            return Err("max_backoff_ms must be at least base_backoff_ms");
        }
        Ok(())
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The limiter's state.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    cfg: RateLimitConfig,
    /// Times of the most recent failures (ring, `count` valid entries ending at `next - 1`).
    failures: [u64; MAX_TRACKED_FAILURES],
    count: usize,
    next: usize,
    /// Locked until this time (exclusive), if locked.
    locked_until: Option<u64>,
    /// Lock-outs since the last success; the next back-off is `base << level`, capped.
    level: u32,
    /// Latest time seen, to ignore a clock going backwards.
    last_now: u64,
    lockouts: u64,
}

impl RateLimiter {
    /// A limiter with validated settings.
    pub fn new(cfg: RateLimitConfig) -> Result<Self, &'static str> {
        cfg.validate()?;
        Ok(RateLimiter {
            cfg,
            failures: [0; MAX_TRACKED_FAILURES],
            count: 0,
            next: 0,
            locked_until: None,
            level: 0,
            last_now: 0,
            lockouts: 0,
        })
    }

    /// The settings.
    pub fn config(&self) -> RateLimitConfig {
        self.cfg
    }

    /// Lock-outs started so far.
    pub fn lockouts(&self) -> u64 {
        self.lockouts
    }

    fn clock(&mut self, now_ms: u64) -> u64 {
        self.last_now = self.last_now.max(now_ms);
        self.last_now
    }

    /// If locked at `now_ms`, the milliseconds left; `None` when requests may be checked.
    pub fn locked(&mut self, now_ms: u64) -> Option<u64> {
        let now = self.clock(now_ms);
        match self.locked_until {
            Some(until) if now < until => Some(until - now),
            Some(_) => {
                self.locked_until = None;
                None
            }
            None => None,
        }
    }

    /// Record a failed attempt; returns the lock-out length if this failure started one.
    pub fn record_failure(&mut self, now_ms: u64) -> Option<u64> {
        let now = self.clock(now_ms);
        let max = usize::from(self.cfg.max_failures);
        self.failures[self.next] = now;
        self.next = (self.next + 1) % max;
        self.count = (self.count + 1).min(max);
        if self.count < max {
            return None;
        }
        // The oldest of the last `max` failures is the slot about to be overwritten.
        let oldest = self.failures[self.next];
        if now - oldest >= self.cfg.window_ms {
            return None;
        }
        let backoff = self
            .cfg
            .base_backoff_ms
            .checked_shl(self.level)
            .filter(|b| b >> self.level == self.cfg.base_backoff_ms)
            .map_or(self.cfg.max_backoff_ms, |b| b.min(self.cfg.max_backoff_ms));
        self.level = self.level.saturating_add(1).min(63);
        self.locked_until = Some(now.saturating_add(backoff));
        self.count = 0;
        self.lockouts += 1;
        Some(backoff)
    }

    /// Record a success: the back-off doubling starts again from the base.
    pub fn record_success(&mut self) {
        self.level = 0;
    }
}
