//! `nearest_rank` against the definition, and `Window` against a plain list of the last samples.

use proptest::prelude::*;
use sis_stats::{nearest_rank, Window};

proptest! {
    #[test]
    fn nearest_rank_is_the_smallest_sample_covering_p_percent(
        mut v in proptest::collection::vec(0u64..1000, 1..300),
        p in 1u32..=100,
    ) {
        v.sort_unstable();
        let got = nearest_rank(&v, p).unwrap();
        let n = v.len() as u64;
        let covered = |x: u64| v.iter().filter(|&&s| s <= x).count() as u64 * 100 >= u64::from(p) * n;
        prop_assert!(covered(got));
        prop_assert!(v.iter().all(|&s| s >= got || !covered(s)));
    }

    #[test]
    fn window_keeps_the_last_n(samples in proptest::collection::vec(0u64..1_000_000, 0..100), p in 1u32..=100) {
        let mut w = Window::<u64, 16>::default();
        for &s in &samples {
            w.push(s);
        }
        let mut last: Vec<u64> = samples.iter().rev().take(16).copied().collect();
        last.sort_unstable();
        prop_assert_eq!(w.percentile(p), nearest_rank(&last, p));
        prop_assert_eq!(w.total(), samples.len() as u64);
        prop_assert_eq!(w.overwritten(), samples.len().saturating_sub(16) as u64);
    }
}
