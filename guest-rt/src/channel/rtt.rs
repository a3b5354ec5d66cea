//! Round-trip time statistics for `ping` (pure, host tested).

/// Percentiles of a set of samples (same unit as the samples).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Smallest sample.
    pub min: u64,
    /// Median (nearest rank).
    pub p50: u64,
    /// 99th percentile (nearest rank).
    pub p99: u64,
    /// Largest sample.
    pub max: u64,
}

/// Sorts `samples` in place and summarises them; `None` when there are none.
pub fn summarize(samples: &mut [u64]) -> Option<Summary> {
    samples.sort_unstable();
    let p = sis_stats::percentiles(samples)?;
    Some(Summary {
        n: p.window,
        min: samples[0],
        p50: p.p50,
        p99: p.p99,
        max: p.max,
    })
}

/// Converts `counts` of a counter running at `hz` to microseconds (rounded down, saturating;
/// 0 if `hz` is 0).
pub fn counts_to_us(counts: u64, hz: u64) -> u64 {
    if hz == 0 {
        return 0;
    }
    let us = u128::from(counts) * 1_000_000 / u128::from(hz);
    u64::try_from(us).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        let s = summarize(&mut v).unwrap();
        assert_eq!((s.n, s.min, s.p50, s.p99, s.max), (100, 1, 50, 99, 100));
        let mut one = [7];
        let s = summarize(&mut one).unwrap();
        assert_eq!((s.p50, s.p99), (7, 7));
        // 1000 samples: ten outliers are the top 1% (p99 is still ordinary), twelve are not.
        let mut v: Vec<u64> = (0..1000)
            .map(|i| if i % 100 == 0 { 5000 } else { 10 })
            .collect();
        let s = summarize(&mut v).unwrap();
        assert_eq!((s.p50, s.p99, s.max), (10, 10, 5000));
        let mut v: Vec<u64> = (0..1000)
            .map(|i| if i % 90 == 0 { 5000 } else { 10 })
            .collect();
        assert_eq!(summarize(&mut v).unwrap().p99, 5000);
        assert_eq!(summarize(&mut []), None);
    }

    #[test]
    fn microseconds() {
        assert_eq!(counts_to_us(62_500, 62_500_000), 1000);
        assert_eq!(counts_to_us(u64::MAX, 1), u64::MAX);
        assert_eq!(counts_to_us(5, 0), 0);
    }
}
