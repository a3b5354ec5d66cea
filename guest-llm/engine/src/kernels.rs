//! Dot-product kernels of the Q4_K, Q5_K and Q6_K formats: the portable ones, written
//! once over primitives (the 32-value formats are in [`crate::quant::dot32_n`]); the AVX2
//! ([`crate::quant_avx2`]) and NEON ([`crate::quant_neon`]) twins form the same integers
//! their own way (byte products; same-width 16-bit lanes) and share [`Acc`] and
//! [`min_term`].
//!
//! Every kernel computes, per block, an exact integer dot product of the weights' integer
//! values with the 8-bit activations (K formats: per sub-block, then weighted by the
//! sub-block scales, all in `i32`, which cannot overflow: at most 2^27 in magnitude), and
//! then a fixed float combination: one scale multiply per block, blocks summed into four
//! accumulators (`block % 4`) and `(a0 + a1) + (a2 + a3)` at the end. Only the integer
//! part differs between instruction sets, and integer sums are exact in any order, so
//! the portable, AVX2 and NEON kernels compute the same bits.
//!
//! The primitives, in the module that invokes [`block_kernels!`] ([`portable`]):
//! - `B`: 32 unsigned bytes, and `W`: 32 `i16` values;
//! - `nib_lo(&[u8]) -> B` / `nib_hi(&[u8]) -> B`: the low / high nibbles of 32 bytes;
//! - `bit_of(&[u8], n) -> B`: 16 where bit `n` of byte `i` is set;
//!   `two_bits_of(&[u8], n) -> B`: `((b[i] >> n) & 3) << 4`;
//! - `or(B, B) -> B`; `widen(B, offset) -> W` (`b[i] - offset`);
//! - `dot(&W, &[i16]) -> i32` over 32 values, `dot_halves(&W, &[i16]) -> (i32, i32)` over
//!   values 0..16 and 16..32.

pub use crate::blocks::{f16_at, k_scales, u32_at, QK, QK_K};

/// Four float accumulators filled in block order (`block % 4`) and summed in a fixed order.
#[derive(Clone, Copy, Default)]
pub struct Acc([f32; 4]);

impl Acc {
    /// Adds the contribution `v` of block `b`.
    #[inline(always)]
    pub fn add(&mut self, b: usize, v: f32) {
        self.0[b & 3] += v;
    }
    /// `(a0 + a1) + (a2 + a3)`.
    #[inline(always)]
    pub fn sum(self) -> f32 {
        (self.0[0] + self.0[1]) + (self.0[2] + self.0[3])
    }
}

/// Weighted sum `sum(w[j] * s[j])` of per-sub-block integer sums (exact in `i32`).
#[inline(always)]
pub fn weighted<const N: usize>(w: &[i32; N], s: &[i32; N]) -> i32 {
    let mut acc = 0i32;
    for j in 0..N {
        acc += w[j] * s[j];
    }
    acc
}

/// The Q4_K/Q5_K minimum term: `sum(mn[j] * (bsums[2j] + bsums[2j + 1]))` for one block.
#[inline(always)]
pub fn min_term(mn: &[u8; 8], bsums: &[i16]) -> i32 {
    let bsums = &bsums[..16];
    let mut acc = 0i32;
    for j in 0..8 {
        acc += mn[j] as i32 * (bsums[2 * j] as i32 + bsums[2 * j + 1] as i32);
    }
    acc
}

/// Generates `dot_q4_k_n`, `dot_q5_k_n` and `dot_q6_k_n` (one weight row against `T` activation vectors) from the instruction
/// set's primitives in scope, each function carrying the given attributes.
macro_rules! block_kernels {
    ($(#[$attr:meta])*) => {
        /// Dot products of a Q4_K row with `T` Q8_K activation vectors.
        $(#[$attr])*
        pub fn dot_q4_k_n<const T: usize>(
            row: &[u8],
            a: [&$crate::quant::Q8KActs; T],
        ) -> [f32; T] {
            use $crate::kernels::*;
            let mut acc = [Acc::default(); T];
            for (b, blk) in row.chunks_exact($crate::blocks::Format::Q4_K.block_bytes()).enumerate() {
                let d = f16_at(blk, 0);
                let dmin = f16_at(blk, 2);
                let (sc, mn) = k_scales(&blk[4..16]);
                let sc = sc.map(|s| s as i32);
                let w: [W; 8] = core::array::from_fn(|j| {
                    let qs = &blk[16 + 32 * (j / 2)..16 + 32 * (j / 2) + 32];
                    widen(if j % 2 == 0 { nib_lo(qs) } else { nib_hi(qs) }, 0)
                });
                for t in 0..T {
                    let y = &a[t].q[b * QK_K..(b + 1) * QK_K];
                    let s: [i32; 8] = core::array::from_fn(|j| dot(&w[j], &y[32 * j..32 * j + 32]));
                    let isum = weighted(&sc, &s);
                    let msum = min_term(&mn, &a[t].bsums[16 * b..16 * b + 16]);
                    let yd = a[t].d[b];
                    acc[t].add(b, (d * yd) * isum as f32 - (dmin * yd) * msum as f32);
                }
            }
            core::array::from_fn(|t| acc[t].sum())
        }

        /// Dot products of a Q5_K row with `T` Q8_K activation vectors.
        $(#[$attr])*
        pub fn dot_q5_k_n<const T: usize>(
            row: &[u8],
            a: [&$crate::quant::Q8KActs; T],
        ) -> [f32; T] {
            use $crate::kernels::*;
            let mut acc = [Acc::default(); T];
            for (b, blk) in row.chunks_exact($crate::blocks::Format::Q5_K.block_bytes()).enumerate() {
                let d = f16_at(blk, 0);
                let dmin = f16_at(blk, 2);
                let (sc, mn) = k_scales(&blk[4..16]);
                let sc = sc.map(|s| s as i32);
                let qh = &blk[16..48];
                let w: [W; 8] = core::array::from_fn(|j| {
                    let qs = &blk[48 + 32 * (j / 2)..48 + 32 * (j / 2) + 32];
                    let lo = if j % 2 == 0 { nib_lo(qs) } else { nib_hi(qs) };
                    widen(or(lo, bit_of(qh, j as u32)), 0)
                });
                for t in 0..T {
                    let y = &a[t].q[b * QK_K..(b + 1) * QK_K];
                    let s: [i32; 8] = core::array::from_fn(|j| dot(&w[j], &y[32 * j..32 * j + 32]));
                    let isum = weighted(&sc, &s);
                    let msum = min_term(&mn, &a[t].bsums[16 * b..16 * b + 16]);
                    let yd = a[t].d[b];
                    acc[t].add(b, (d * yd) * isum as f32 - (dmin * yd) * msum as f32);
                }
            }
            core::array::from_fn(|t| acc[t].sum())
        }

        /// Dot products of a Q6_K row with `T` Q8_K activation vectors.
        $(#[$attr])*
        pub fn dot_q6_k_n<const T: usize>(
            row: &[u8],
            a: [&$crate::quant::Q8KActs; T],
        ) -> [f32; T] {
            use $crate::kernels::*;
            let mut acc = [Acc::default(); T];
            for (b, blk) in row.chunks_exact($crate::blocks::Format::Q6_K.block_bytes()).enumerate() {
                let d = f16_at(blk, 208);
                let sc: [i32; 16] = core::array::from_fn(|j| blk[192 + j] as i8 as i32);
                let w: [W; 8] = core::array::from_fn(|k| {
                    let (lo, nib_shift, hi, h_shift) = $crate::blocks::q6k_chunk(k);
                    let q = if nib_shift == 0 {
                        nib_lo(&blk[lo..lo + 32])
                    } else {
                        nib_hi(&blk[lo..lo + 32])
                    };
                    widen(or(q, two_bits_of(&blk[hi..hi + 32], h_shift)), 32)
                });
                for t in 0..T {
                    let y = &a[t].q[b * QK_K..(b + 1) * QK_K];
                    let mut s = [0i32; 16];
                    for k in 0..8 {
                        let (s0, s1) = dot_halves(&w[k], &y[32 * k..32 * k + 32]);
                        s[2 * k] = s0;
                        s[2 * k + 1] = s1;
                    }
                    let isum = weighted(&sc, &s);
                    acc[t].add(b, (d * a[t].d[b]) * isum as f32);
                }
            }
            core::array::from_fn(|t| acc[t].sum())
        }
    };
}
pub(crate) use block_kernels;

/// The portable instruction set: plain Rust on arrays.
pub mod portable {
    /// 32 unsigned bytes.
    pub type B = [u8; 32];
    /// 32 `i16` values.
    pub type W = [i16; 32];

    /// Low nibbles of `b[..32]`.
    #[inline(always)]
    pub fn nib_lo(b: &[u8]) -> B {
        let b = &b[..32];
        core::array::from_fn(|i| b[i] & 0x0f)
    }
    /// High nibbles of `b[..32]`.
    #[inline(always)]
    pub fn nib_hi(b: &[u8]) -> B {
        let b = &b[..32];
        core::array::from_fn(|i| b[i] >> 4)
    }
    /// 16 where bit `n` of `b[i]` is set.
    #[inline(always)]
    pub fn bit_of(b: &[u8], n: u32) -> B {
        let b = &b[..32];
        core::array::from_fn(|i| ((b[i] >> n) & 1) << 4)
    }
    /// `((b[i] >> n) & 3) << 4`.
    #[inline(always)]
    pub fn two_bits_of(b: &[u8], n: u32) -> B {
        let b = &b[..32];
        core::array::from_fn(|i| ((b[i] >> n) & 3) << 4)
    }
    /// Bitwise or.
    #[inline(always)]
    pub fn or(a: B, b: B) -> B {
        core::array::from_fn(|i| a[i] | b[i])
    }
    /// `b[i] - offset` as `i16`.
    #[inline(always)]
    pub fn widen(b: B, offset: i16) -> W {
        core::array::from_fn(|i| b[i] as i16 - offset)
    }
    /// Sum of `w[i] * y[i]` over 32 values (exact).
    #[inline(always)]
    pub fn dot(w: &W, y: &[i16]) -> i32 {
        let y = &y[..32];
        let mut s = 0i32;
        for i in 0..32 {
            s += w[i] as i32 * y[i] as i32;
        }
        s
    }
    /// The sums over values 0..16 and 16..32.
    #[inline(always)]
    pub fn dot_halves(w: &W, y: &[i16]) -> (i32, i32) {
        let y = &y[..32];
        let (mut a, mut b) = (0i32, 0i32);
        for i in 0..16 {
            a += w[i] as i32 * y[i] as i32;
            b += w[i + 16] as i32 * y[i + 16] as i32;
        }
        (a, b)
    }

    super::block_kernels!(#[inline(always)]);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::portable;
    use crate::blocks::{dequantize_row, Format, QK_K};
    use crate::quant::{Q8Acts, Q8KActs};
    use alloc::vec::Vec;

    pub fn xorshift(seed: &mut u32) -> u32 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 17;
        *seed ^= *seed << 5;
        *seed
    }

    /// Random blocks with small, finite binary16 scales (and arbitrary quantized bits).
    pub fn random_row(format: Format, cols: usize, seed: &mut u32) -> Vec<u8> {
        let bb = format.block_bytes();
        let mut row: Vec<u8> = (0..cols / format.block_values() * bb)
            .map(|_| xorshift(seed) as u8)
            .collect();
        let half = |s: &mut u32| -> [u8; 2] {
            // Exponent 5..12 (about 2^-10 .. 2^-3), random sign and mantissa.
            let e = 5 + (xorshift(s) % 8) as u16;
            ((xorshift(s) as u16 & 0x83ff) | (e << 10)).to_le_bytes()
        };
        for blk in row.chunks_exact_mut(bb) {
            let at: &[usize] = match format {
                Format::Q4_0 | Format::Q5_0 | Format::Q8_0 => &[0],
                Format::Q4_1 | Format::Q5_1 | Format::Q4_K | Format::Q5_K => &[0, 2],
                Format::Q6_K => &[208],
            };
            for &a in at {
                blk[a..a + 2].copy_from_slice(&half(seed));
            }
        }
        row
    }

    fn dequant_dot(format: Format, row: &[u8], x: &[f32]) -> f32 {
        let mut w = alloc::vec![0.0; x.len()];
        dequantize_row(format, row, &mut w);
        w.iter().zip(x).map(|(a, b)| a * b).sum()
    }

    #[test]
    fn kernels_agree_with_dequantized_math() {
        let mut seed = 0x9e37_79b9;
        let cols = 2 * QK_K;
        for round in 0..20 {
            let x: Vec<f32> = (0..cols)
                .map(|_| (xorshift(&mut seed) % 2001) as f32 / 1000.0 - 1.0)
                .collect();
            let a8 = Q8Acts::quantize(&x);
            let ak = Q8KActs::quantize(&x);
            for format in [
                Format::Q4_0,
                Format::Q5_0,
                Format::Q5_1,
                Format::Q4_K,
                Format::Q5_K,
                Format::Q6_K,
            ] {
                let row = random_row(format, cols, &mut seed);
                let got = match format {
                    Format::Q4_0 => crate::quant::dot_q4_0_n(&row, [&a8])[0],
                    Format::Q5_0 => crate::quant::dot_q5_0_n(&row, [&a8])[0],
                    Format::Q5_1 => crate::quant::dot_q5_1_n(&row, [&a8])[0],
                    Format::Q4_K => portable::dot_q4_k_n(&row, [&ak])[0],
                    Format::Q5_K => portable::dot_q5_k_n(&row, [&ak])[0],
                    _ => portable::dot_q6_k_n(&row, [&ak])[0],
                };
                let exact = dequant_dot(format, &row, &x);
                let mut w = alloc::vec![0.0; cols];
                dequantize_row(format, &row, &mut w);
                // Activation quantization error bound: half a step per value.
                let bound: f32 = w.iter().map(|v| v.abs()).sum::<f32>() * (0.5 / 127.0) + 1e-3;
                assert!(
                    (got - exact).abs() <= bound,
                    "{format:?} round {round}: {got} vs {exact} (bound {bound})"
                );
            }
        }
    }

    #[test]
    fn batched_equals_single() {
        let mut seed = 77;
        let cols = QK_K;
        let xs: Vec<Vec<f32>> = (0..3)
            .map(|_| {
                (0..cols)
                    .map(|_| (xorshift(&mut seed) % 201) as f32 / 10.0 - 10.0)
                    .collect()
            })
            .collect();
        let a: Vec<Q8KActs> = xs.iter().map(|x| Q8KActs::quantize(x)).collect();
        let row = random_row(Format::Q6_K, cols, &mut seed);
        let three = portable::dot_q6_k_n(&row, [&a[0], &a[1], &a[2]]);
        for t in 0..3 {
            assert_eq!(
                three[t].to_bits(),
                portable::dot_q6_k_n(&row, [&a[t]])[0].to_bits()
            );
        }
    }
}
