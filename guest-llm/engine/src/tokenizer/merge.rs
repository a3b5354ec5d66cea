//! Greedy pairwise merging of adjacent symbols with a priority queue, in O(n log n).
//!
//! Both tokenizers repeatedly merge the best adjacent pair (lowest BPE rank, or highest
//! SentencePiece score), the leftmost one on ties, until no pair merges. Done naively
//! that is quadratic, which a long hostile prompt (one 5000-letter "word") turns into
//! seconds; the queue keeps it near-linear with the same result.

use alloc::collections::BinaryHeap;
use alloc::vec::Vec;
use core::cmp::Reverse;

struct Entry<P> {
    prio: P,
    left: usize,
    right: usize,
    ver_l: u32,
    ver_r: u32,
}

impl<P: Ord> PartialEq for Entry<P> {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == core::cmp::Ordering::Equal
    }
}
impl<P: Ord> Eq for Entry<P> {}
impl<P: Ord> PartialOrd for Entry<P> {
    fn partial_cmp(&self, o: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<P: Ord> Ord for Entry<P> {
    fn cmp(&self, o: &Self) -> core::cmp::Ordering {
        // Highest priority first; among equals, the leftmost pair.
        (&self.prio, Reverse(self.left)).cmp(&(&o.prio, Reverse(o.left)))
    }
}

fn push<S, P: Ord>(
    heap: &mut BinaryHeap<Entry<P>>,
    pair: &mut impl FnMut(&S, &S) -> Option<(P, S)>,
    syms: &[S],
    ver: &[u32],
    l: usize,
    r: usize,
) {
    if let Some((prio, _)) = pair(&syms[l], &syms[r]) {
        heap.push(Entry {
            prio,
            left: l,
            right: r,
            ver_l: ver[l],
            ver_r: ver[r],
        });
    }
}

/// Merges `syms` in place. `pair(a, b)` returns the priority of merging `a` and `b`
/// (higher merges first) and the merged symbol, or `None` if they do not merge.
pub(crate) fn merge<S, P: Ord>(syms: &mut Vec<S>, mut pair: impl FnMut(&S, &S) -> Option<(P, S)>) {
    let n = syms.len();
    if n < 2 {
        return;
    }
    const NONE: usize = usize::MAX;
    let mut next: Vec<usize> = (1..n).chain([NONE]).collect();
    let mut prev: Vec<usize> = [NONE].into_iter().chain(0..n - 1).collect();
    let mut alive = alloc::vec![true; n];
    let mut ver = alloc::vec![0u32; n];
    let mut heap = BinaryHeap::new();
    for i in 0..n - 1 {
        push(&mut heap, &mut pair, syms, &ver, i, i + 1);
    }
    while let Some(e) = heap.pop() {
        let (l, r) = (e.left, e.right);
        // Skip entries made stale by an earlier merge of either side.
        if !alive[l] || !alive[r] || ver[l] != e.ver_l || ver[r] != e.ver_r || next[l] != r {
            continue;
        }
        let Some((_, merged)) = pair(&syms[l], &syms[r]) else {
            continue;
        };
        syms[l] = merged;
        ver[l] += 1;
        alive[r] = false;
        let nr = next[r];
        next[l] = nr;
        if nr != NONE {
            prev[nr] = l;
            push(&mut heap, &mut pair, syms, &ver, l, nr);
        }
        if prev[l] != NONE {
            push(&mut heap, &mut pair, syms, &ver, prev[l], l);
        }
    }
    let mut i = 0;
    syms.retain(|_| {
        i += 1;
        alive[i - 1]
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;

    /// The quadratic reference: merge the best (then leftmost) pair until none merges.
    fn naive(mut syms: Vec<String>, rank: &dyn Fn(&str, &str) -> Option<u32>) -> Vec<String> {
        loop {
            let mut best: Option<(u32, usize)> = None;
            for k in 0..syms.len().saturating_sub(1) {
                if let Some(r) = rank(&syms[k], &syms[k + 1]) {
                    if best.is_none_or(|(b, _)| r < b) {
                        best = Some((r, k));
                    }
                }
            }
            let Some((_, k)) = best else { return syms };
            let right = syms.remove(k + 1);
            syms[k].push_str(&right);
        }
    }

    #[test]
    fn same_result_as_naive_merging() {
        let merges = ["a b", "ab a", "b a", "aba b", "c c", "cc c", "b c", "a a"];
        let rank = |a: &str, b: &str| {
            merges
                .iter()
                .position(|m| *m == alloc::format!("{a} {b}"))
                .map(|p| p as u32)
        };
        let mut seed = 12345u32;
        for _ in 0..300 {
            let len = (seed % 17) as usize;
            let mut word = String::new();
            for _ in 0..len {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                word.push(['a', 'b', 'c'][(seed >> 16) as usize % 3]);
            }
            let syms: Vec<String> = word.chars().map(String::from).collect();
            let want = naive(syms.clone(), &rank);
            let mut got = syms;
            merge(&mut got, |a, b| {
                rank(a, b).map(|r| (Reverse(r), alloc::format!("{a}{b}")))
            });
            assert_eq!(got, want, "word {word:?}");
        }
        let mut one = vec![String::from("x")];
        merge(&mut one, |_, _| None::<(u32, String)>);
        assert_eq!(one, ["x"]);
    }

    #[test]
    fn work_is_linear_in_the_number_of_symbols() {
        // Everything merges; a quadratic scan would call `pair` ~n^2/2 times.
        let n = 4000;
        let mut syms = vec![1u64; n];
        let mut calls = 0usize;
        merge(&mut syms, |a, b| {
            calls += 1;
            Some((Reverse(a + b), a + b))
        });
        assert_eq!(syms, [n as u64]);
        assert!(calls < 8 * n, "{calls} pair evaluations for {n} symbols");
    }

    #[test]
    fn single_symbol_is_left_alone() {
        let mut one = vec![String::from("x")];
        merge(&mut one, |_, _| None::<(u32, String)>);
        assert_eq!(one, ["x"]);
    }
}
