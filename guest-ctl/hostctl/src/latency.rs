//! Round-trip latency samples (the last [`WINDOW`]) with percentiles on demand.

/// Samples kept.
pub const WINDOW: usize = 1024;

/// A window of the most recent latency samples, in microseconds, and the largest since boot.
pub struct Latency {
    window: sis_stats::Window<u32, WINDOW>,
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
            window: sis_stats::Window::<u32, WINDOW>::new(),
            max: 0,
        }
    }

    /// Adds a sample (saturated to `u32::MAX` µs).
    pub fn record(&mut self, us: u64) {
        let v = u32::try_from(us).unwrap_or(u32::MAX);
        self.window.push(v);
        self.max = self.max.max(v);
    }

    /// Samples recorded since boot.
    pub fn count(&self) -> u64 {
        self.window.total()
    }

    /// Largest sample since boot.
    pub fn max(&self) -> u32 {
        self.max
    }

    /// The `p`-th percentile (1..=100, nearest rank) of the kept window; `None` when empty.
    pub fn percentile(&self, p: u32) -> Option<u32> {
        self.window.percentile(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p50_p99_and_max_since_boot() {
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
