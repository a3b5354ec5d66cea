//! Nearest-rank percentiles, and a window of the most recent samples to take them over: the one
//! statistics helper of the guests (scheduler response and jitter, ping round trips, host-control
//! latency) and the host tools (`datactl-bench`). `no_std`, no allocation.
#![no_std]

/// The nearest-rank `p`-th percentile (`p` in 0..=100; larger values count as 100) of `sorted`
/// (ascending): the smallest sample such that at least `p`% of the samples are <= it, and the
/// smallest sample for `p` = 0. `None` when there are no samples.
pub fn nearest_rank<T: Copy>(sorted: &[T], p: u32) -> Option<T> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = (p.min(100) as usize * n).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

/// p50, p99 and the largest sample of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentiles<T> {
    /// Median (nearest rank).
    pub p50: T,
    /// 99th percentile (nearest rank).
    pub p99: T,
    /// Largest sample.
    pub max: T,
    /// Samples the percentiles were taken over.
    pub window: usize,
}

/// p50, p99 and max of `sorted` (ascending); `None` when empty.
pub fn percentiles<T: Copy>(sorted: &[T]) -> Option<Percentiles<T>> {
    Some(Percentiles {
        p50: nearest_rank(sorted, 50)?,
        p99: nearest_rank(sorted, 99)?,
        max: *sorted.last()?,
        window: sorted.len(),
    })
}

/// The last `N` samples (older ones are overwritten, and counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window<T, const N: usize> {
    buf: [T; N],
    next: usize,
    len: usize,
    total: u64,
}

impl<T: Copy + Ord + Default, const N: usize> Default for Window<T, N> {
    fn default() -> Self {
        Self::new_with(T::default())
    }
}

impl<const N: usize> Window<u64, N> {
    /// An empty window.
    pub const fn new() -> Self {
        Self::new_with(0)
    }
}

impl<const N: usize> Window<u32, N> {
    /// An empty window.
    pub const fn new() -> Self {
        Self::new_with(0)
    }
}

impl<T: Copy + Ord, const N: usize> Window<T, N> {
    /// An empty window (`fill` only initialises the storage).
    pub const fn new_with(fill: T) -> Self {
        Self {
            buf: [fill; N],
            next: 0,
            len: 0,
            total: 0,
        }
    }

    /// Records a sample, overwriting the oldest when full.
    pub fn push(&mut self, v: T) {
        self.buf[self.next] = v;
        self.next = (self.next + 1) % N;
        self.len = (self.len + 1).min(N);
        self.total = self.total.saturating_add(1);
    }

    /// Samples ever recorded.
    pub const fn total(&self) -> u64 {
        self.total
    }

    /// Samples in the window.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether no sample was recorded.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Samples overwritten (recorded but no longer in the window).
    pub const fn overwritten(&self) -> u64 {
        self.total - self.len as u64
    }

    /// Nearest-rank percentile `p` (1..=100) of the window. `None` when the window is empty or
    /// `p` is out of range.
    pub fn percentile(&self, p: u32) -> Option<T> {
        if p == 0 || p > 100 {
            return None;
        }
        let sorted = self.sorted();
        nearest_rank(&sorted[..self.len], p)
    }

    /// p50, p99 and max of the window, `None` when empty.
    pub fn percentiles(&self) -> Option<Percentiles<T>> {
        let sorted = self.sorted();
        percentiles(&sorted[..self.len])
    }

    fn sorted(&self) -> [T; N] {
        let mut copy = self.buf;
        copy[..self.len].sort_unstable();
        copy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_on_one_to_hundred() {
        let v: [u64; 100] = core::array::from_fn(|i| i as u64 + 1);
        assert_eq!(nearest_rank(&v, 50), Some(50));
        assert_eq!(nearest_rank(&v, 99), Some(99));
        assert_eq!(nearest_rank(&v, 100), Some(100));
        assert_eq!(nearest_rank(&v, 0), Some(1));
        assert_eq!(nearest_rank(&v, 250), Some(100));
        assert_eq!(nearest_rank(&[7u64], 99), Some(7));
        assert_eq!(nearest_rank::<u64>(&[], 50), None);
    }

    #[test]
    fn empty_window_has_no_percentiles() {
        let r = Window::<u64, 8>::default();
        assert_eq!(r.percentiles(), None);
        assert_eq!(r.percentile(50), None);
        assert!(r.is_empty());
    }

    #[test]
    fn window_on_one_to_hundred() {
        let mut r = Window::<u64, 256>::default();
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
        let mut r = Window::<u64, 4>::default();
        r.push(7);
        assert_eq!(r.percentiles().map(|p| (p.p50, p.p99)), Some((7, 7)));
        r.push(3);
        // n=2: p50 rank 1 -> 3, p99 rank 2 -> 7.
        assert_eq!(r.percentiles().map(|p| (p.p50, p.p99)), Some((3, 7)));
    }

    #[test]
    fn old_samples_are_overwritten_and_counted() {
        let mut r = Window::<u32, 16>::default();
        for _ in 0..16 {
            r.push(1_000);
        }
        for _ in 0..16 {
            r.push(5);
        }
        assert_eq!((r.total(), r.len(), r.overwritten()), (32, 16, 16));
        assert_eq!(r.percentiles().unwrap().max, 5);
    }
}
