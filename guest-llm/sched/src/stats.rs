//! A fixed ring of the most recent samples and nearest-rank percentiles over it.

/// Number of samples kept per ring.
pub const SAMPLE_WINDOW: usize = 256;

/// Percentiles of a sample ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentiles {
    /// Median (nearest rank).
    pub p50: u64,
    /// 99th percentile (nearest rank).
    pub p99: u64,
    /// Largest sample in the window.
    pub max: u64,
    /// Samples in the window the percentiles were taken over.
    pub window: usize,
}

/// The last [`SAMPLE_WINDOW`] samples (older ones are overwritten, and counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleRing {
    buf: [u64; SAMPLE_WINDOW],
    next: usize,
    len: usize,
    total: u64,
}

impl Default for SampleRing {
    fn default() -> Self {
        Self::new()
    }
}

impl SampleRing {
    /// An empty ring.
    pub const fn new() -> Self {
        Self {
            buf: [0; SAMPLE_WINDOW],
            next: 0,
            len: 0,
            total: 0,
        }
    }

    /// Records a sample, overwriting the oldest when full.
    pub fn push(&mut self, v: u64) {
        self.buf[self.next] = v;
        self.next = (self.next + 1) % SAMPLE_WINDOW;
        self.len = (self.len + 1).min(SAMPLE_WINDOW);
        self.total = self.total.saturating_add(1);
    }

    /// Samples ever recorded.
    pub const fn total(&self) -> u64 {
        self.total
    }

    /// Samples overwritten (recorded but no longer in the window).
    pub const fn overwritten(&self) -> u64 {
        self.total - self.len as u64
    }

    /// Nearest-rank percentile `p` (1..=100) of the window: the smallest sample such that at
    /// least `p`% of the window is <= it. `None` when the ring is empty or `p` is out of range.
    pub fn percentile(&self, p: u32) -> Option<u64> {
        let sorted = self.sorted();
        Self::rank(&sorted[..self.len], p)
    }

    /// p50, p99 and max of the window, `None` when empty.
    pub fn percentiles(&self) -> Option<Percentiles> {
        let sorted = self.sorted();
        let w = &sorted[..self.len];
        Some(Percentiles {
            p50: Self::rank(w, 50)?,
            p99: Self::rank(w, 99)?,
            max: *w.last()?,
            window: self.len,
        })
    }

    fn sorted(&self) -> [u64; SAMPLE_WINDOW] {
        let mut copy = self.buf;
        copy[..self.len].sort_unstable();
        copy
    }

    fn rank(sorted: &[u64], p: u32) -> Option<u64> {
        if sorted.is_empty() || p == 0 || p > 100 {
            return None;
        }
        let n = sorted.len();
        let rank = (n * p as usize).div_ceil(100);
        Some(sorted[rank.max(1) - 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_ring_has_no_percentiles() {
        let r = SampleRing::new();
        assert_eq!(r.percentiles(), None);
        assert_eq!(r.percentile(50), None);
    }

    #[test]
    fn nearest_rank_on_one_to_hundred() {
        let mut r = SampleRing::new();
        for v in (1..=100).rev() {
            r.push(v);
        }
        let p = r.percentiles().unwrap();
        assert_eq!((p.p50, p.p99, p.max, p.window), (50, 99, 100, 100));
        assert_eq!(r.percentile(1), Some(1));
        assert_eq!(r.percentile(100), Some(100));
        assert_eq!(r.percentile(0), None);
        assert_eq!(r.percentile(101), None);
    }

    #[test]
    fn small_windows() {
        let mut r = SampleRing::new();
        r.push(7);
        assert_eq!(r.percentiles().map(|p| (p.p50, p.p99)), Some((7, 7)));
        r.push(3);
        // n=2: p50 rank 1 -> 3, p99 rank 2 -> 7.
        assert_eq!(r.percentiles().map(|p| (p.p50, p.p99)), Some((3, 7)));
    }

    #[test]
    fn old_samples_are_overwritten_and_counted() {
        let mut r = SampleRing::new();
        for _ in 0..SAMPLE_WINDOW {
            r.push(1_000);
        }
        for _ in 0..SAMPLE_WINDOW {
            r.push(5);
        }
        assert_eq!(r.total(), 2 * SAMPLE_WINDOW as u64);
        assert_eq!(r.overwritten(), SAMPLE_WINDOW as u64);
        assert_eq!(r.percentiles().unwrap().max, 5);
    }
}
