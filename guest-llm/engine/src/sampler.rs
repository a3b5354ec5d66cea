//! Token selection with llama.cpp's sampler chain, meaning and numerics.
//!
//! The chain is the one `common/sampling.cpp` builds with its default sampler order (the
//! samplers that are off by default — DRY, top-n-sigma, typical-p, XTC — are left out):
//!
//! 1. **penalties** over the last `repeat_last_n` accepted tokens (the prompt's and the
//!    generated ones, as llama.cpp's server and CLI accept both): a logit `l` of a token
//!    seen `c > 0` times becomes `l * r` if `l <= 0`, else `l / r` (`r` =
//!    `repeat_penalty`), then `l - c * frequency_penalty - presence_penalty`;
//! 2. **top-k**: the `top_k` largest logits (sorted, largest first);
//! 3. **top-p**: softmax over the remaining candidates, then the shortest prefix of them
//!    (largest first) whose probability mass reaches `top_p`;
//! 4. **min-p**: the candidates whose logit is at least `max + ln(min_p)` (probability at
//!    least `min_p` times the largest);
//! 5. **temperature**: logits divided by `temperature`; 0 means greedy (the largest
//!    logit, the lowest id on ties, after the penalties);
//! 6. **dist**: a draw from the softmax of what remains, with llama.cpp's generator
//!    (`std::mt19937` seeded with the 32-bit seed, one `uniform_real_distribution<double>`
//!    draw per token as libstdc++ computes it) and its cumulative walk in candidate
//!    order. Given the same logits, a seeded run picks the tokens llama.cpp picks.
//!
//! Every step uses a fixed order of `f32`/`f64` operations and `libm`, so a seed gives
//! the same tokens on every target.

use crate::error::{Error, Result};
use alloc::collections::VecDeque;
use alloc::format;
use alloc::vec::Vec;
use core::cmp::Ordering;

/// The 32-bit Mersenne Twister (`std::mt19937`), llama.cpp's sampling generator.
#[derive(Clone)]
pub struct Mt19937 {
    state: [u32; 624],
    index: usize,
}

impl core::fmt::Debug for Mt19937 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mt19937")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl Mt19937 {
    /// Seeds the generator as `std::mt19937(seed)` does.
    pub fn new(seed: u32) -> Self {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { state, index: 624 }
    }

    fn twist(&mut self) {
        for i in 0..624 {
            let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7fff_ffff);
            let mut v = self.state[(i + 397) % 624] ^ (y >> 1);
            if y & 1 != 0 {
                v ^= 0x9908_b0df;
            }
            self.state[i] = v;
        }
        self.index = 0;
    }

    /// Next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// Uniform in `[0, 1)`: libstdc++'s `generate_canonical<double, 53>` over two draws,
    /// which is what `std::uniform_real_distribution<double>(0, 1)` returns.
    pub fn next_f64(&mut self) -> f64 {
        let lo = f64::from(self.next_u32());
        let hi = f64::from(self.next_u32());
        let r = (lo + hi * 4_294_967_296.0) / 18_446_744_073_709_551_616.0;
        if r >= 1.0 {
            1.0 - f64::EPSILON / 2.0
        } else {
            r
        }
    }
}

/// How to pick the next token. Construct with named fields over a default:
/// `SamplerConfig { temperature: 0.8, seed: 7, ..SamplerConfig::default() }`.
///
/// [`Default`] is greedy (temperature 0) with llama.cpp's defaults for everything else,
/// so giving only a temperature samples exactly as llama.cpp does by default (top-k 40,
/// top-p 0.95, min-p 0.05, no penalties). [`SamplerConfig::LLAMA_CPP`] is llama.cpp's
/// full default set (temperature 0.8).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerConfig {
    /// 0 = greedy; else 0.001..=1000. llama.cpp's default: 0.8.
    pub temperature: f32,
    /// Keep the `top_k` most likely tokens; 0 = off. Default 40.
    pub top_k: u32,
    /// Nucleus mass in `[0, 1]`; 1 = off. Default 0.95.
    pub top_p: f32,
    /// Minimum probability relative to the most likely token, `[0, 1]`; 0 = off.
    /// Default 0.05.
    pub min_p: f32,
    /// Repetition penalty in `[0.001, 1000]`; 1 = off (the default).
    pub repeat_penalty: f32,
    /// How many of the last accepted tokens the penalties look at; 0 = off. Default 64.
    pub repeat_last_n: u32,
    /// Subtracted once per occurrence in the window, `[-2, 2]`; default 0 (off).
    pub frequency_penalty: f32,
    /// Subtracted once if the token occurs in the window, `[-2, 2]`; default 0 (off).
    pub presence_penalty: f32,
    /// Generator seed, `0..=u32::MAX` (llama.cpp's seeds are 32-bit; its 0xFFFFFFFF
    /// means "random", here it is a seed like any other). Default 0.
    pub seed: u64,
}

impl SamplerConfig {
    /// llama.cpp's defaults (`common_params_sampling`), seed 0.
    pub const LLAMA_CPP: SamplerConfig = SamplerConfig {
        temperature: 0.8,
        top_k: 40,
        top_p: 0.95,
        min_p: 0.05,
        repeat_penalty: 1.0,
        repeat_last_n: 64,
        frequency_penalty: 0.0,
        presence_penalty: 0.0,
        seed: 0,
    };

    /// Plain greedy decoding: argmax of the raw logits, no penalties.
    pub const GREEDY: SamplerConfig = SamplerConfig {
        temperature: 0.0,
        ..Self::LLAMA_CPP
    };

    /// Checks every value against its range; the error names the parameter and range.
    pub fn validate(&self) -> Result<()> {
        fn bad(name: &str, v: f32, range: &str) -> Error {
            Error::InvalidArgument(format!("{name} = {v} is out of range: {range}"))
        }
        fn within(v: f32, lo: f32, hi: f32) -> bool {
            v >= lo && v <= hi // false for NaN
        }
        let t = self.temperature;
        if !(t == 0.0 || within(t, 0.001, 1000.0)) {
            return Err(bad("temperature", t, "0 (greedy) or 0.001..=1000"));
        }
        if !within(self.top_p, 0.0, 1.0) {
            return Err(bad("top_p", self.top_p, "0..=1 (1 = off)"));
        }
        if !within(self.min_p, 0.0, 1.0) {
            return Err(bad("min_p", self.min_p, "0..=1 (0 = off)"));
        }
        if !within(self.repeat_penalty, 0.001, 1000.0) {
            return Err(bad(
                "repeat_penalty",
                self.repeat_penalty,
                "0.001..=1000 (1 = off)",
            ));
        }
        if !within(self.frequency_penalty, -2.0, 2.0) {
            return Err(bad(
                "frequency_penalty",
                self.frequency_penalty,
                "-2..=2 (0 = off)",
            ));
        }
        if !within(self.presence_penalty, -2.0, 2.0) {
            return Err(bad(
                "presence_penalty",
                self.presence_penalty,
                "-2..=2 (0 = off)",
            ));
        }
        if self.seed > u64::from(u32::MAX) {
            return Err(Error::InvalidArgument(format!(
                "seed = {} is out of range: 0..={} (llama.cpp's seeds are 32-bit)",
                self.seed,
                u32::MAX
            )));
        }
        Ok(())
    }

    /// Whether the penalties change anything (llama.cpp's test).
    fn penalties_on(&self) -> bool {
        self.repeat_last_n > 0
            && !(self.repeat_penalty == 1.0
                && self.frequency_penalty == 0.0
                && self.presence_penalty == 0.0)
    }
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self::GREEDY
    }
}

/// One candidate token: its (current) logit, probability and id.
#[derive(Debug, Clone, Copy)]
struct Cand {
    logit: f32,
    p: f32,
    id: u32,
}

/// Largest logit first, then lowest id: a strict total order, so any partial sort gives
/// the same prefix.
fn desc(a: &Cand, b: &Cand) -> Ordering {
    b.logit.total_cmp(&a.logit).then(a.id.cmp(&b.id))
}

/// Sorts the `k` largest candidates to the front (largest first).
fn sort_prefix(c: &mut [Cand], k: usize) {
    if k == 0 {
        return;
    }
    if k < c.len() {
        c.select_nth_unstable_by(k - 1, desc);
    }
    c[..k].sort_unstable_by(desc);
}

/// A sampler: configuration, generator and the penalty window.
#[derive(Debug, Clone)]
pub struct Sampler {
    cfg: SamplerConfig,
    rng: Mt19937,
    /// The last `repeat_last_n` accepted tokens (kept only when the penalties are on).
    window: VecDeque<u32>,
    cands: Vec<Cand>,
    scratch: Vec<u32>,
}

/// Index of the largest logit (the first one on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

impl Sampler {
    /// Validates the parameters and seeds the generator.
    pub fn new(cfg: SamplerConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Sampler {
            cfg,
            rng: Mt19937::new(cfg.seed as u32),
            window: VecDeque::new(),
            cands: Vec::new(),
            scratch: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SamplerConfig {
        &self.cfg
    }

    /// Records a token of the sequence (prompt or generated) for the penalties.
    pub fn accept(&mut self, token: u32) {
        if !self.cfg.penalties_on() {
            return;
        }
        if self.window.len() >= self.cfg.repeat_last_n as usize {
            self.window.pop_front();
        }
        self.window.push_back(token);
    }

    /// Tokens currently in the penalty window, oldest first.
    pub fn window(&self) -> impl Iterator<Item = u32> + '_ {
        self.window.iter().copied()
    }

    /// Applies the penalties to `cands`, which hold the whole vocabulary in id order.
    fn penalize(&mut self) {
        if !self.cfg.penalties_on() || self.window.is_empty() {
            return;
        }
        self.scratch.clear();
        self.scratch.extend(self.window.iter().copied());
        self.scratch.sort_unstable();
        let (r, f, pr) = (
            self.cfg.repeat_penalty,
            self.cfg.frequency_penalty,
            self.cfg.presence_penalty,
        );
        let mut i = 0;
        while i < self.scratch.len() {
            let id = self.scratch[i];
            let mut j = i;
            while j < self.scratch.len() && self.scratch[j] == id {
                j += 1;
            }
            let count = (j - i) as f32;
            i = j;
            let Some(c) = self.cands.get_mut(id as usize) else {
                continue;
            };
            if c.logit <= 0.0 {
                c.logit *= r;
            } else {
                c.logit /= r;
            }
            c.logit -= count * f + pr;
        }
    }

    /// Picks a token from `logits` (one per vocabulary entry). Does not record it: call
    /// [`Sampler::accept`] with the token the sequence continues with.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if logits.is_empty() {
            return 0;
        }
        let cfg = self.cfg;
        if cfg.temperature == 0.0 && !cfg.penalties_on() {
            return argmax(logits);
        }
        self.cands.clear();
        self.cands
            .extend(logits.iter().enumerate().map(|(i, &l)| Cand {
                logit: l,
                p: 0.0,
                id: i as u32,
            }));
        self.penalize();
        if cfg.temperature == 0.0 {
            // Top-k, top-p and min-p always keep the largest logit: greedy is the argmax.
            let mut best = 0;
            for (i, c) in self.cands.iter().enumerate() {
                if c.logit > self.cands[best].logit {
                    best = i;
                }
            }
            return self.cands[best].id;
        }
        let mut sorted = false;
        self.top_k(&mut sorted);
        self.top_p(&mut sorted);
        self.min_p(&mut sorted);
        for c in self.cands.iter_mut() {
            c.logit /= cfg.temperature;
        }
        self.dist(sorted)
    }

    fn top_k(&mut self, sorted: &mut bool) {
        let k = self.cfg.top_k as usize;
        if k == 0 {
            return;
        }
        let k = k.min(self.cands.len());
        if !*sorted {
            sort_prefix(&mut self.cands, k);
            *sorted = true;
        }
        self.cands.truncate(k);
    }

    /// llama.cpp's softmax without sorting: probabilities summed in candidate order.
    fn softmax(&mut self, sorted: bool) {
        let max = if sorted {
            self.cands[0].logit
        } else {
            self.cands
                .iter()
                .fold(self.cands[0].logit, |m, c| m.max(c.logit))
        };
        let mut sum = 0.0f32;
        for c in self.cands.iter_mut() {
            c.p = libm::expf(c.logit - max);
            sum += c.p;
        }
        for c in self.cands.iter_mut() {
            c.p /= sum;
        }
    }

    fn top_p(&mut self, sorted: &mut bool) {
        let p = self.cfg.top_p;
        if p >= 1.0 {
            return;
        }
        self.softmax(*sorted);
        let n = self.cands.len();
        // Sort lazily: the nucleus is usually within the first few hundred.
        let mut done = if *sorted { n } else { 0 };
        let mut cum = 0.0f32;
        let mut keep = n;
        for i in 0..n {
            if i == done {
                let next = if done == 0 { n.min(256) } else { n };
                sort_prefix(&mut self.cands[done..], next - done);
                done = next;
            }
            cum += self.cands[i].p;
            if cum >= p {
                keep = i + 1;
                break;
            }
        }
        self.cands.truncate(keep);
        *sorted = true;
    }

    fn min_p(&mut self, sorted: &mut bool) {
        let p = self.cfg.min_p;
        if p <= 0.0 || self.cands.is_empty() {
            return;
        }
        let ln_p = libm::logf(p);
        if !*sorted {
            let max = self.cands.iter().fold(-f32::MAX, |m, c| m.max(c.logit));
            let min_logit = max + ln_p;
            if self.cands.iter().any(|c| c.logit >= min_logit) {
                self.cands.retain(|c| c.logit >= min_logit);
                return;
            }
            let n = self.cands.len();
            sort_prefix(&mut self.cands, n);
            *sorted = true;
        }
        let min_logit = self.cands[0].logit + ln_p;
        let keep = 1 + self.cands[1..]
            .iter()
            .take_while(|c| c.logit >= min_logit)
            .count();
        self.cands.truncate(keep);
    }

    /// llama.cpp's `dist`: probabilities as `f32`, their sum and the walk in `f64`.
    fn dist(&mut self, sorted: bool) -> u32 {
        let r = self.rng.next_f64();
        if self.cands.len() == 1 {
            return self.cands[0].id;
        }
        let max = if sorted {
            self.cands[0].logit
        } else {
            self.cands
                .iter()
                .fold(self.cands[0].logit, |m, c| m.max(c.logit))
        };
        let mut sum = 0.0f64;
        for c in self.cands.iter_mut() {
            c.p = libm::expf(c.logit - max);
            sum += f64::from(c.p);
        }
        let target = sum * r;
        let mut run = 0.0f64;
        for c in &self.cands {
            run += f64::from(c.p);
            if run >= target {
                return c.id;
            }
        }
        self.cands[self.cands.len() - 1].id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_matches_the_standard() {
        // The C++ standard: the 10000th draw of a default-constructed (seed 5489)
        // std::mt19937 is 4123659995.
        let mut g = Mt19937::new(5489);
        let v = (0..10_000).map(|_| g.next_u32()).last().unwrap();
        assert_eq!(v, 4_123_659_995);
        let mut g = Mt19937::new(0);
        assert_eq!(g.next_u32(), 2_357_136_044);
    }

    #[test]
    fn greedy_takes_first_max() {
        let mut s = Sampler::new(SamplerConfig::default()).unwrap();
        assert_eq!(s.sample(&[1.0, 3.0, 3.0, -1.0]), 1);
    }

    fn cfg() -> SamplerConfig {
        SamplerConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            seed: 42,
            ..SamplerConfig::default()
        }
    }

    fn draws(c: SamplerConfig, logits: &[f32], n: usize) -> Vec<u32> {
        let mut s = Sampler::new(c).unwrap();
        (0..n).map(|_| s.sample(logits)).collect()
    }

    #[test]
    fn seeded_sampling_repeats_and_filters_cut_the_tail() {
        let logits: Vec<f32> = (0..50).map(|i| (i % 7) as f32 * 0.5).collect();
        let a = draws(cfg(), &logits, 200);
        assert_eq!(a, draws(cfg(), &logits, 200));
        assert_ne!(a, draws(SamplerConfig { seed: 43, ..cfg() }, &logits, 200));
        assert!(
            a.iter().any(|&t| t % 7 == 0),
            "no filter: every class occurs"
        );
        // top-p 0.9 excludes the lowest-probability class (i % 7 == 0).
        let p = draws(
            SamplerConfig {
                top_p: 0.9,
                ..cfg()
            },
            &logits,
            200,
        );
        assert!(p.iter().all(|&t| t % 7 != 0));
        // min-p 0.5: only logits within ln 2 of the max (classes 5 and 6).
        let m = draws(
            SamplerConfig {
                min_p: 0.5,
                ..cfg()
            },
            &logits,
            200,
        );
        assert!(m.iter().all(|&t| t % 7 >= 5));
        assert!(m.iter().any(|&t| t % 7 == 5));
        // top-k 3: the three largest (ids 6, 13, 20, ties broken by id).
        let k = draws(SamplerConfig { top_k: 3, ..cfg() }, &logits, 200);
        assert!(k.iter().all(|&t| [6, 13, 20].contains(&t)));
        // top-k 1 and top-p 0 are greedy (lowest id on ties).
        assert!(draws(SamplerConfig { top_k: 1, ..cfg() }, &logits, 20)
            .iter()
            .all(|&t| t == 6));
        assert!(draws(
            SamplerConfig {
                top_p: 0.0,
                ..cfg()
            },
            &logits,
            20
        )
        .iter()
        .all(|&t| t == 6));
    }

    #[test]
    fn penalties_follow_llama_cpp() {
        let mut s = Sampler::new(SamplerConfig {
            repeat_penalty: 2.0,
            repeat_last_n: 3,
            frequency_penalty: 0.25,
            presence_penalty: 0.5,
            ..SamplerConfig::default()
        })
        .unwrap();
        // Window: the last three of 0, 1, 1, 2 -> {1: 2, 2: 1}.
        for t in [0, 1, 1, 2] {
            s.accept(t);
        }
        assert_eq!(s.window().collect::<Vec<_>>(), [1, 1, 2]);
        s.cands = [4.0f32, 4.0, -1.0, 3.0]
            .iter()
            .enumerate()
            .map(|(i, &l)| Cand {
                logit: l,
                p: 0.0,
                id: i as u32,
            })
            .collect();
        s.penalize();
        let l: Vec<f32> = s.cands.iter().map(|c| c.logit).collect();
        // 1: 4/2 - 2*0.25 - 0.5; 2: -1*2 - 0.25 - 0.5.
        assert_eq!(l, [4.0, 1.0, -2.75, 3.0]);
        // Greedy with a penalty: token 0 wins over the penalized 1.
        assert_eq!(s.sample(&[4.0, 4.5, -1.0, 3.0]), 0);
    }

    #[test]
    fn bad_parameters_rejected_with_their_name() {
        let bad = |c: SamplerConfig, name: &str| match Sampler::new(c) {
            Err(Error::InvalidArgument(m)) => assert!(m.starts_with(name), "{m}"),
            other => panic!("{name}: {other:?}"),
        };
        let d = SamplerConfig::default();
        bad(
            SamplerConfig {
                temperature: -1.0,
                ..d
            },
            "temperature",
        );
        bad(
            SamplerConfig {
                temperature: f32::NAN,
                ..d
            },
            "temperature",
        );
        bad(
            SamplerConfig {
                temperature: 1e-6,
                ..d
            },
            "temperature",
        );
        bad(SamplerConfig { top_p: 1.5, ..d }, "top_p");
        bad(SamplerConfig { top_p: -0.1, ..d }, "top_p");
        bad(SamplerConfig { min_p: 2.0, ..d }, "min_p");
        bad(
            SamplerConfig {
                repeat_penalty: 0.0,
                ..d
            },
            "repeat_penalty",
        );
        bad(
            SamplerConfig {
                repeat_penalty: f32::INFINITY,
                ..d
            },
            "repeat_penalty",
        );
        bad(
            SamplerConfig {
                frequency_penalty: 3.0,
                ..d
            },
            "frequency_penalty",
        );
        bad(
            SamplerConfig {
                presence_penalty: f32::NAN,
                ..d
            },
            "presence_penalty",
        );
        bad(SamplerConfig { seed: 1 << 32, ..d }, "seed");
        for ok in [
            SamplerConfig::LLAMA_CPP,
            SamplerConfig {
                top_p: 0.0,
                min_p: 1.0,
                seed: u32::MAX as u64,
                ..d
            },
        ] {
            assert!(Sampler::new(ok).is_ok());
        }
    }
}
