//! Round-trip latency samples (the last [`WINDOW`]) with percentiles on demand.

/// Samples kept.
pub const WINDOW: usize = 1024;

/// A window of the most recent latency samples, in microseconds.
pub struct Latency {
    samples: [u32; WINDOW],
    next: usize,
    total: u64,
    max: u32,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// No samples.
    pub const fn new() -> Self {
        Latency {
            samples: [0; WINDOW],
            next: 0,
            total: 0,
            max: 0,
        }
    }

    /// Adds a sample (saturated to `u32::MAX` µs).
    pub fn record(&mut self, us: u64) {
        let v = u32::try_from(us).unwrap_or(u32::MAX);
        self.samples[self.next] = v;
        self.next = (self.next + 1) % WINDOW;
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// Samples recorded since boot.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Largest sample since boot.
    pub fn max(&self) -> u32 {
        self.max
    }

    /// The `p`-th percentile (0..=100, nearest rank) of the kept window; `None` when empty.
    pub fn percentile(&self, p: u32) -> Option<u32> {
        let n = (self.total as usize).min(WINDOW);
        if n == 0 {
            return None;
        }
        let mut sorted = self.samples;
        let window = &mut sorted[..n];
        window.sort_unstable();
        let rank = (p.min(100) as usize * n).div_ceil(100).max(1);
        Some(window[rank - 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut l = Latency::new();
        assert_eq!(l.percentile(50), None);
        for v in 1..=100u64 {
            l.record(v);
        }
        assert_eq!(l.percentile(50), Some(50));
        assert_eq!(l.percentile(99), Some(99));
        assert_eq!(l.percentile(100), Some(100));
        assert_eq!((l.count(), l.max()), (100, 100));
    }

    #[test]
    fn window_keeps_the_most_recent() {
        let mut l = Latency::new();
        for _ in 0..WINDOW {
            l.record(1_000_000);
        }
        for _ in 0..WINDOW {
            l.record(5);
        }
        assert_eq!(l.percentile(99), Some(5));
        assert_eq!(l.max(), 1_000_000);
        l.record(u64::MAX);
        assert_eq!(l.max(), u32::MAX);
    }
}
