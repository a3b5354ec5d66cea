//! A token bucket on the system counter: `rate` events per second on average, bursts of up to
//! `burst`. Pure arithmetic on counter values the caller reads, so it is tested on the host.
//!
//! Tokens are kept in units of 1/`freq` of a token (one counter tick at one event per second),
//! so refilling is a multiplication and no division or floating point is needed.

/// The bucket's state.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokenBucket {
    /// Tokens in 1/`freq` units.
    units: u64,
    /// Counter value of the last refill.
    last: u64,
    /// Set once the first call filled the bucket.
    primed: bool,
}

/// How the bucket is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Counter frequency (ticks per second).
    pub freq: u64,
    /// Events per second allowed on average.
    pub rate: u64,
    /// Events allowed at once after a quiet period.
    pub burst: u64,
}

impl TokenBucket {
    /// A bucket that starts full at its first use.
    pub const fn new() -> Self {
        TokenBucket {
            units: 0,
            last: 0,
            primed: false,
        }
    }

    /// Takes one token at counter value `now`; false (nothing taken) if the bucket is empty.
    /// A counter that goes backwards (another core's reading) adds nothing.
    pub fn take(&mut self, now: u64, l: Limit) -> bool {
        let freq = l.freq.max(1);
        let cap = l.burst.saturating_mul(freq);
        if !self.primed {
            self.primed = true;
            self.units = cap;
            self.last = now;
        } else if now > self.last {
            // Beyond this many ticks the bucket is full anyway (and the product cannot overflow).
            let full_after = cap / l.rate.max(1) + 1;
            let dt = (now - self.last).min(full_after);
            self.units = self.units.saturating_add(dt * l.rate).min(cap);
            self.last = now;
        }
        if self.units >= freq {
            self.units -= freq;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const L: Limit = Limit {
        freq: 62_500_000,
        rate: 20_000,
        burst: 64,
    };

    #[test]
    fn a_burst_then_the_rate() {
        let mut b = TokenBucket::new();
        let t0 = 1_000_000;
        let granted = (0..1000).filter(|_| b.take(t0, L)).count();
        assert_eq!(granted, 64, "the burst, at one instant");
        // One token per freq/rate ticks = 3125 ticks (50 us).
        assert!(!b.take(t0 + 3124, L));
        assert!(b.take(t0 + 3125, L));
        assert!(!b.take(t0 + 3125, L));
        // One second later: full again, never more than the burst.
        let t1 = t0 + 3125 + L.freq;
        assert_eq!((0..1000).filter(|_| b.take(t1, L)).count(), 64);
    }

    #[test]
    fn a_counter_going_backwards_adds_nothing() {
        let mut b = TokenBucket::new();
        for _ in 0..64 {
            assert!(b.take(5_000_000, L));
        }
        assert!(!b.take(1, L));
        assert!(!b.take(5_000_000, L));
    }

    proptest! {
        /// Over any sequence of calls at non-decreasing times, the tokens granted never exceed
        /// burst + rate * elapsed seconds.
        #[test]
        fn never_more_than_burst_plus_rate(steps in proptest::collection::vec(0u64..200_000, 1..2000)) {
            let mut b = TokenBucket::new();
            let (start, mut now, mut granted) = (7u64, 7u64, 0u64);
            for s in steps {
                now += s;
                if b.take(now, L) {
                    granted += 1;
                }
            }
            let allowed = L.burst as u128 + (now - start) as u128 * L.rate as u128 / L.freq as u128;
            prop_assert!(granted as u128 <= allowed, "{granted} > {allowed}");
        }
    }
}
