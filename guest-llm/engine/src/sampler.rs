//! Token selection: greedy, or temperature + top-p with a seeded PRNG so a run is
//! repeatable bit for bit.

use crate::error::{Error, Result};
use alloc::format;
use alloc::vec::Vec;

/// xorshift64* pseudo-random generator.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// Seeds the generator (any seed, zero included, is valid).
    pub fn new(seed: u64) -> Self {
        // Mix the seed so nearby seeds diverge and zero is not a fixed point.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng {
            state: if z == 0 { 1 } else { z },
        }
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `[0, 1)` with 24 bits of precision.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u32 << 24) as f32
    }
}

/// How to pick the next token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerConfig {
    /// 0 means greedy (argmax).
    pub temperature: f32,
    /// Nucleus mass in `(0, 1]`; 1 disables top-p.
    pub top_p: f32,
    /// PRNG seed.
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
        }
    }
}

/// A sampler with its PRNG state.
#[derive(Debug, Clone)]
pub struct Sampler {
    cfg: SamplerConfig,
    rng: Rng,
    probs: Vec<(f32, u32)>,
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
    /// Validates the parameters and seeds the PRNG.
    pub fn new(cfg: SamplerConfig) -> Result<Self> {
        if !(cfg.temperature.is_finite() && cfg.temperature >= 0.0) {
            return Err(Error::InvalidArgument(format!(
                "temperature {} (must be >= 0)",
                cfg.temperature
            )));
        }
        if !(cfg.top_p > 0.0 && cfg.top_p <= 1.0) {
            return Err(Error::InvalidArgument(format!(
                "top-p {} (must be in (0, 1])",
                cfg.top_p
            )));
        }
        Ok(Sampler {
            cfg,
            rng: Rng::new(cfg.seed),
            probs: Vec::new(),
        })
    }

    /// Picks a token from `logits`.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.cfg.temperature == 0.0 || logits.len() <= 1 {
            return argmax(logits);
        }
        let inv_t = 1.0 / self.cfg.temperature;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        self.probs.clear();
        let mut sum = 0.0f32;
        for (i, &l) in logits.iter().enumerate() {
            let p = libm::expf((l - max) * inv_t);
            sum += p;
            self.probs.push((p, i as u32));
        }
        let r = self.rng.next_f32();
        if self.cfg.top_p < 1.0 {
            // A token below (1 - top_p) / (n - 1) of the mass can never be inside the
            // nucleus (as in llama2.c), so drop those before sorting: same result,
            // far less sorting.
            let cutoff = (1.0 - self.cfg.top_p) / (logits.len() - 1) as f32 * sum;
            self.probs.retain(|&(p, _)| p >= cutoff);
            // Largest first; equal probabilities keep index order.
            self.probs
                .sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let limit = self.cfg.top_p * sum;
            let mut cum = 0.0f32;
            let mut keep = self.probs.len();
            for (k, &(p, _)) in self.probs.iter().enumerate() {
                cum += p;
                if cum >= limit {
                    keep = k + 1;
                    break;
                }
            }
            self.probs.truncate(keep);
            sum = cum;
        }
        let target = r * sum;
        let mut cum = 0.0f32;
        for &(p, i) in &self.probs {
            cum += p;
            if target < cum {
                return i;
            }
        }
        self.probs.last().map(|p| p.1).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_first_max() {
        let mut s = Sampler::new(SamplerConfig::default()).unwrap();
        assert_eq!(s.sample(&[1.0, 3.0, 3.0, -1.0]), 1);
    }

    #[test]
    fn seeded_sampling_repeats_and_respects_top_p() {
        let logits: Vec<f32> = (0..50).map(|i| (i % 7) as f32 * 0.5).collect();
        let cfg = SamplerConfig {
            temperature: 0.8,
            top_p: 0.9,
            seed: 42,
        };
        let run = || {
            let mut s = Sampler::new(cfg).unwrap();
            (0..100).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        assert!(a.iter().any(|&t| t != a[0]), "sampling should vary");
        // top-p 0.9 excludes the lowest-probability class (i % 7 == 0).
        assert!(a.iter().all(|&t| t % 7 != 0));
        let mut tight = Sampler::new(SamplerConfig { top_p: 1e-6, ..cfg }).unwrap();
        assert!((0..20).all(|_| tight.sample(&logits) == 6));
    }

    #[test]
    fn bad_parameters_rejected() {
        let bad = |t, p| {
            Sampler::new(SamplerConfig {
                temperature: t,
                top_p: p,
                seed: 0,
            })
            .is_err()
        };
        assert!(bad(-1.0, 0.5));
        assert!(bad(f32::NAN, 0.5));
        assert!(bad(1.0, 0.0));
        assert!(bad(1.0, 1.5));
    }
}
