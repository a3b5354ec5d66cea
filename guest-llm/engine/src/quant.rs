//! Block formats and the dot-product kernels.
//!
//! Weights stay in their file format; activations are quantized to 8 bits per 32-value
//! block the way llama.cpp does (Q8_0 scale rounded to f16, Q8_1 also carries
//! `s = d * sum(q)`), or per group with an f32 scale for llama2.c's Q8 checkpoints.
//!
//! Determinism: integer block sums are exact; the float combination across blocks is one
//! fixed formula per block ([`block_value`]) into accumulators in a fixed interleave and
//! a fixed final order, plain `*` and `+` (Rust never fuses them), so every target and
//! every instruction set computes identical bits.

use crate::blocks::{f16_at, values32, Format};
use crate::half::{f16_to_f32, round_f16};
use crate::le::{f32_at, u16_at};
use alloc::vec::Vec;

pub use crate::blocks::{QK, QK_K};
/// Bytes per Q8_0 block: f16 scale + 32 signed bytes.
pub const Q8_0_BLOCK: usize = 34;
/// Bytes per Q4_1 block: f16 scale, f16 minimum, 16 bytes of nibbles.
pub const Q4_1_BLOCK: usize = 20;

/// Rounds to the nearest integer, ties to even, for `|x| < 2^22` (here at most 127):
/// adding and removing 1.5 * 2^23 leaves an integer in default IEEE rounding, on every
/// target.
#[inline(always)]
fn round_even(x: f32) -> f32 {
    const M: f32 = 12_582_912.0;
    (x + M) - M
}

/// The largest magnitude in `x` (0 if empty; NaN values are ignored, as `f32::max`
/// does), in eight lanes so it vectorizes: the maximum does not depend on the order.
#[inline]
fn abs_max(x: &[f32]) -> f32 {
    let mut m = [0.0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for j in 0..8 {
            m[j] = m[j].max(libm::fabsf(c[j]));
        }
    }
    let mut amax = m.iter().fold(0.0f32, |a, &v| a.max(v));
    for &v in chunks.remainder() {
        amax = amax.max(libm::fabsf(v));
    }
    amax
}

/// Activations quantized to 8 bits per 32-value block (shared by Q8_0 and Q8_1 use).
#[derive(Debug, Clone, Default)]
pub struct Q8Acts {
    /// Per-block scale, rounded through f16 as ggml stores it.
    pub d: Vec<f32>,
    /// Per-block `d * sum(q)`, rounded through f16 (the Q8_1 `s` field).
    pub s: Vec<f32>,
    /// Quantized values (in -127..=127).
    pub q: Vec<i8>,
    /// Per-block integer sum of `q` (for the formats stored with an offset).
    pub qsum: Vec<i32>,
    /// `q` widened to 16 bits in the order the NEON kernels unpack weights (see
    /// [`crate::quant_neon::NEON_ORDER`]).
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    pub q16: Vec<i16>,
    /// `q` with groups of blocks transposed in 4-byte units for the x86 kernels of
    /// eight inputs (see [`crate::quant_avx2::transpose_acts`]).
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    pub qt: Vec<i8>,
}

impl Q8Acts {
    /// Quantizes `x` (length a multiple of [`QK`]).
    pub fn quantize(x: &[f32]) -> Self {
        let mut out = Self::default();
        out.quantize_into(x);
        out
    }

    /// Quantizes `x` into `self`, reusing its buffers.
    pub fn quantize_into(&mut self, x: &[f32]) {
        let nb = x.len() / QK;
        let out = self;
        out.d.resize(nb, 0.0);
        out.s.resize(nb, 0.0);
        out.q.resize(nb * QK, 0);
        out.qsum.resize(nb, 0);
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        out.q16.resize(nb * QK, 0);
        for (b, xb) in x.chunks_exact(QK).enumerate() {
            let amax = abs_max(xb);
            // As ggml's x86/ARM SIMD quantizers: scale by 127 / amax, round half to even.
            let d = amax / 127.0;
            let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
            let mut sum = 0i32;
            for (j, &v) in xb.iter().enumerate() {
                let q = round_even(v * id) as i8;
                out.q[b * QK + j] = q;
                sum += q as i32;
            }
            out.qsum[b] = sum;
            #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
            for (j, &k) in crate::quant_neon::NEON_ORDER.iter().enumerate() {
                out.q16[b * QK + j] = out.q[b * QK + k as usize] as i16;
            }
            out.d[b] = round_f16(d);
            out.s[b] = round_f16(sum as f32 * d);
        }
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        crate::quant_avx2::transpose_acts(&out.q, &mut out.qt);
    }
}

/// Activations quantized to 8 bits per 256-value block for the K formats (ggml's Q8_K:
/// an f32 scale and the sums of each 16 values).
#[derive(Debug, Clone, Default)]
pub struct Q8KActs {
    /// Per-block scale (f32, not rounded).
    pub d: Vec<f32>,
    /// Quantized values (in -127..=127), widened to 16 bits.
    pub q: Vec<i16>,
    /// The same values as bytes (the x86 kernels' signed operand of `maddubs`).
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    pub q8: Vec<i8>,
    /// `q` in [`crate::quant_neon::NEON_ORDER`] within each 32 values (the NEON kernels'
    /// order; each 16 values stay within their half, so `bsums` hold for them too).
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    pub qn: Vec<i16>,
    /// Sum of each 16 quantized values.
    pub bsums: Vec<i16>,
}

impl Q8KActs {
    /// Quantizes `x` (length a multiple of [`QK_K`]) as ggml's `quantize_row_q8_K_ref`:
    /// the scale is `-max / 127` where `max` is the first value of largest magnitude (so
    /// the quantized values have the opposite sign when it is positive), values rounded
    /// half to even and capped at 127.
    pub fn quantize(x: &[f32]) -> Self {
        let mut out = Self::default();
        out.quantize_into(x);
        out
    }

    /// Quantizes `x` into `self`, reusing its buffers.
    pub fn quantize_into(&mut self, x: &[f32]) {
        let nb = x.len() / QK_K;
        let out = self;
        out.d.resize(nb, 0.0);
        out.q.resize(nb * QK_K, 0);
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        out.q8.resize(nb * QK_K, 0);
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        out.qn.resize(nb * QK_K, 0);
        out.bsums.resize(nb * QK_K / 16, 0);
        for (b, xb) in x.chunks_exact(QK_K).enumerate() {
            let amax = abs_max(xb);
            // The first value of that magnitude (none if `amax` is 0: NaN is skipped).
            let max = xb
                .iter()
                .copied()
                .find(|&v| libm::fabsf(v) == amax)
                .unwrap_or(0.0);
            let q = &mut out.q[b * QK_K..(b + 1) * QK_K];
            if amax == 0.0 {
                out.d[b] = 0.0;
                q.fill(0);
                out.bsums[b * 16..(b + 1) * 16].fill(0);
                #[cfg(all(feature = "std", target_arch = "x86_64"))]
                out.q8[b * QK_K..(b + 1) * QK_K].fill(0);
                #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
                out.qn[b * QK_K..(b + 1) * QK_K].fill(0);
                continue;
            }
            let iscale = -127.0 / max;
            for (q, &v) in q.iter_mut().zip(xb) {
                *q = (round_even(iscale * v) as i32).min(127) as i16;
            }
            for (s, q16) in out.bsums[b * 16..(b + 1) * 16]
                .iter_mut()
                .zip(q.chunks_exact(16))
            {
                *s = q16.iter().sum();
            }
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            for (q8, &q) in out.q8[b * QK_K..(b + 1) * QK_K].iter_mut().zip(q.iter()) {
                *q8 = q as i8;
            }
            #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
            for (c, qn) in out.qn[b * QK_K..(b + 1) * QK_K]
                .chunks_exact_mut(QK)
                .enumerate()
            {
                for (qn, &k) in qn.iter_mut().zip(crate::quant_neon::NEON_ORDER.iter()) {
                    *qn = q[QK * c + k as usize];
                }
            }
            out.d[b] = 1.0 / iscale;
        }
    }
}

/// Activations quantized per `group` values with an f32 scale (llama2.c `runq.c`).
#[derive(Debug, Clone, Default)]
pub struct GroupActs {
    /// Per-group scale.
    pub s: Vec<f32>,
    /// Quantized values (in -127..=127), widened to 16 bits.
    pub q: Vec<i16>,
}

impl GroupActs {
    /// Quantizes `x` (length a multiple of `group`).
    pub fn quantize(x: &[f32], group: usize) -> Self {
        let mut out = Self::default();
        out.quantize_into(x, group);
        out
    }

    /// Quantizes `x` into `self`, reusing its buffers.
    pub fn quantize_into(&mut self, x: &[f32], group: usize) {
        let ng = x.len() / group;
        let out = self;
        out.s.resize(ng, 0.0);
        out.q.resize(ng * group, 0);
        for (g, xg) in x.chunks_exact(group).enumerate() {
            let mut wmax = 0.0f32;
            for &v in xg {
                wmax = wmax.max(libm::fabsf(v));
            }
            let scale = wmax / 127.0;
            out.s[g] = scale;
            for (j, &v) in xg.iter().enumerate() {
                let qv = if scale != 0.0 { v / scale } else { 0.0 };
                out.q[g * group + j] = libm::roundf(qv) as i8 as i16;
            }
        }
    }
}

#[inline(always)]
pub(crate) fn sum4(acc: [f32; 4]) -> f32 {
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// Sums eight lanes in a fixed tree order.
#[inline(always)]
pub fn sum8(a: [f32; 8]) -> f32 {
    ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
}

/// The 32-value block formats, as the const parameter `F` of [`dot32_n`] and its SIMD
/// twins (const generics cannot take the [`Format`] enum on stable Rust).
pub mod f32b {
    /// [`crate::blocks::Format::Q4_0`].
    pub const Q4_0: u8 = 0;
    /// [`crate::blocks::Format::Q4_1`].
    pub const Q4_1: u8 = 1;
    /// [`crate::blocks::Format::Q5_0`].
    pub const Q5_0: u8 = 2;
    /// [`crate::blocks::Format::Q5_1`].
    pub const Q5_1: u8 = 3;
    /// [`crate::blocks::Format::Q8_0`].
    pub const Q8_0: u8 = 4;
}

/// The [`Format`] of a [`f32b`] constant.
#[inline(always)]
pub const fn format32(f: u8) -> Format {
    match f {
        f32b::Q4_0 => Format::Q4_0,
        f32b::Q4_1 => Format::Q4_1,
        f32b::Q5_0 => Format::Q5_0,
        f32b::Q5_1 => Format::Q5_1,
        _ => Format::Q8_0,
    }
}

/// Whether blocks of `f` carry a minimum (`value = d * q + m`).
#[inline(always)]
pub const fn has_min(f: u8) -> bool {
    matches!(f, f32b::Q4_1 | f32b::Q5_1)
}

/// The offset subtracted from the stored unsigned values of `f` (`value = d * (u - off)`).
#[inline(always)]
pub const fn offset32(f: u8) -> i32 {
    match f {
        f32b::Q4_0 => 8,
        f32b::Q5_0 => 16,
        _ => 0,
    }
}

/// The float contribution of block `b` (bytes `blk`) whose exact integer dot product with
/// the activations is `isum`: `(d_w * d_a) * isum`, plus `m_w * s_a` for the formats with
/// a minimum. Every kernel, portable or SIMD, computes exactly this per block (SIMD ones
/// lane-wise: IEEE multiply and add are exact-rounded and never fused in Rust), and adds
/// it to accumulator `b % 8`; the accumulators are summed by [`sum8`].
#[inline(always)]
pub fn block_value<const F: u8>(blk: &[u8], a: &Q8Acts, b: usize, isum: i32) -> f32 {
    let v = (f16_at(blk, 0) * a.d[b]) * isum as f32;
    if has_min(F) {
        v + f16_at(blk, 2) * a.s[b]
    } else {
        v
    }
}

/// Dot products of one row of the 32-value format `F` (see [`f32b`]) with `T` activation
/// vectors: per block the exact integer dot product `sum(w[k] * y[k])` of the weights'
/// integer values and the 8-bit activations (at most 32 * 128 * 127 < 2^24 in magnitude,
/// so even its conversion to f32 is exact), then [`block_value`] into accumulator
/// `b % 8`, then [`sum8`]. Integer sums are exact in any order, so the SIMD kernels
/// ([`crate::quant_avx2`], [`crate::quant_neon`]), which form them differently, produce
/// the same bits. Each input's arithmetic is the same for any `T`.
#[inline(always)]
pub fn dot32_n<const F: u8, const T: usize>(row: &[u8], a: [&Q8Acts; T]) -> [f32; T] {
    let format = format32(F);
    let mut acc = [[0.0f32; 8]; T];
    for (b, blk) in row.chunks_exact(format.block_bytes()).enumerate() {
        let w = values32(format, blk);
        for t in 0..T {
            let y = &a[t].q[b * QK..(b + 1) * QK];
            let mut isum = 0i32;
            for k in 0..QK {
                isum += w[k] as i32 * y[k] as i32;
            }
            acc[t][b % 8] += block_value::<F>(blk, a[t], b, isum);
        }
    }
    core::array::from_fn(|t| sum8(acc[t]))
}

/// Names `dot_q4_0_n` .. `dot_q8_0_n` for `$kernel::<F, T>` (one weight row, `T` inputs).
macro_rules! named_dot32 {
    ($kernel:ident $(, #[$attr:meta])*) => {
        /// Q4_0 row against `T` Q8_0 inputs.
        $(#[$attr])*
        pub fn dot_q4_0_n<const T: usize>(row: &[u8], a: [&$crate::quant::Q8Acts; T]) -> [f32; T] {
            $kernel::<{ $crate::quant::f32b::Q4_0 }, T>(row, a)
        }
        /// Q4_1 row against `T` Q8_1 inputs.
        $(#[$attr])*
        pub fn dot_q4_1_n<const T: usize>(row: &[u8], a: [&$crate::quant::Q8Acts; T]) -> [f32; T] {
            $kernel::<{ $crate::quant::f32b::Q4_1 }, T>(row, a)
        }
        /// Q5_0 row against `T` Q8_0 inputs.
        $(#[$attr])*
        pub fn dot_q5_0_n<const T: usize>(row: &[u8], a: [&$crate::quant::Q8Acts; T]) -> [f32; T] {
            $kernel::<{ $crate::quant::f32b::Q5_0 }, T>(row, a)
        }
        /// Q5_1 row against `T` Q8_1 inputs.
        $(#[$attr])*
        pub fn dot_q5_1_n<const T: usize>(row: &[u8], a: [&$crate::quant::Q8Acts; T]) -> [f32; T] {
            $kernel::<{ $crate::quant::f32b::Q5_1 }, T>(row, a)
        }
        /// Q8_0 row against `T` Q8_0 inputs.
        $(#[$attr])*
        pub fn dot_q8_0_n<const T: usize>(row: &[u8], a: [&$crate::quant::Q8Acts; T]) -> [f32; T] {
            $kernel::<{ $crate::quant::f32b::Q8_0 }, T>(row, a)
        }
    };
}
pub(crate) use named_dot32;

named_dot32!(dot32_n, #[inline(always)]);

/// Dot product of a Q4_1 row with Q8_1 activations.
pub fn dot_q4_1(row: &[u8], a: &Q8Acts) -> f32 {
    dot_q4_1_n::<1>(row, [a])[0]
}

/// Dot product of a Q8_0 row with Q8_0 activations.
pub fn dot_q8_0(row: &[u8], a: &Q8Acts) -> f32 {
    dot_q8_0_n::<1>(row, [a])[0]
}

/// Dot product of a group-quantized int8 row (values `q`, f32 scales `s`) with group
/// activations.
#[inline(always)]
pub fn dot_group_q8(q: &[u8], s: &[u8], group: usize, a: &GroupActs) -> f32 {
    let mut acc = [0.0f32; 4];
    for (g, ((wq, xq), &xs)) in q
        .chunks_exact(group)
        .zip(a.q.chunks_exact(group))
        .zip(&a.s)
        .enumerate()
    {
        let mut ival = 0i32;
        for (&w, &x) in wq.iter().zip(xq) {
            ival += ((w as i8) as i16 * x) as i32;
        }
        acc[g & 3] += (ival as f32 * f32_at(s, g)) * xs;
    }
    sum4(acc)
}

/// Dot product of a little-endian f32 row with `x`.
#[inline]
pub fn dot_f32(row: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut wc = row.chunks_exact(32);
    let mut xc = x.chunks_exact(8);
    for (w8, x8) in (&mut wc).zip(&mut xc) {
        for j in 0..8 {
            acc[j] += f32_at(w8, j) * x8[j];
        }
    }
    let mut tail = 0.0f32;
    for (i, &xv) in xc.remainder().iter().enumerate() {
        tail += f32_at(wc.remainder(), i) * xv;
    }
    sum8(acc) + tail
}

/// Dot product of a little-endian f16 row with `x` (already rounded through f16, as
/// ggml converts activations for f16 weights).
#[inline]
pub fn dot_f16(row: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut wc = row.chunks_exact(16);
    let mut xc = x.chunks_exact(8);
    for (w8, x8) in (&mut wc).zip(&mut xc) {
        for j in 0..8 {
            acc[j] += f16_to_f32(u16_at(w8, j)) * x8[j];
        }
    }
    let mut tail = 0.0f32;
    for (i, &xv) in xc.remainder().iter().enumerate() {
        tail += f16_to_f32(u16_at(wc.remainder(), i)) * xv;
    }
    sum8(acc) + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::half::f32_to_f16;

    fn lcg(seed: &mut u32) -> f32 {
        *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (*seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
    }

    #[test]
    fn q4_1_dot_matches_dequantized_math() {
        let mut seed = 7;
        let n = 64;
        let mut row = Vec::new();
        let mut deq = Vec::new();
        for _ in 0..n / QK {
            let d = 0.05f32;
            let m = -0.4f32;
            row.extend_from_slice(&f32_to_f16(d).to_le_bytes());
            row.extend_from_slice(&f32_to_f16(m).to_le_bytes());
            let mut nib = [0u8; 32];
            for v in nib.iter_mut() {
                *v = ((lcg(&mut seed) + 1.0) * 7.99) as u8;
            }
            for j in 0..16 {
                row.push(nib[j] | (nib[j + 16] << 4));
            }
            let (dd, mm) = (round_f16(d), round_f16(m));
            deq.extend(nib.iter().map(|&q| dd * q as f32 + mm));
        }
        let x: Vec<f32> = (0..n).map(|_| lcg(&mut seed)).collect();
        let exact: f32 = deq.iter().zip(&x).map(|(a, b)| a * b).sum();
        let got = dot_q4_1(&row, &Q8Acts::quantize(&x));
        assert!((got - exact).abs() < 0.05, "{got} vs {exact}");
    }

    #[test]
    fn q8_0_dot_matches_dequantized_math() {
        let mut seed = 3;
        let n = 96;
        let mut row = Vec::new();
        let mut deq = Vec::new();
        for _ in 0..n / QK {
            let d = 0.01f32;
            row.extend_from_slice(&f32_to_f16(d).to_le_bytes());
            for _ in 0..QK {
                let q = (lcg(&mut seed) * 127.0) as i8;
                row.push(q as u8);
                deq.push(round_f16(d) * q as f32);
            }
        }
        let x: Vec<f32> = (0..n).map(|_| lcg(&mut seed)).collect();
        let exact: f32 = deq.iter().zip(&x).map(|(a, b)| a * b).sum();
        let got = dot_q8_0(&row, &Q8Acts::quantize(&x));
        assert!((got - exact).abs() < 0.02, "{got} vs {exact}");
    }

    #[test]
    fn round_even_matches_ties_to_even() {
        for (x, want) in [
            (0.5f32, 0.0f32),
            (1.5, 2.0),
            (2.5, 2.0),
            (-0.5, 0.0),
            (-1.5, -2.0),
            (126.7, 127.0),
            (-3.2, -3.0),
        ] {
            assert_eq!(round_even(x), want, "{x}");
        }
    }

    #[test]
    fn activation_quantization_bounds_error() {
        let x: Vec<f32> = (0..64).map(|i| (i as f32 - 31.5) / 10.0).collect();
        let a = Q8Acts::quantize(&x);
        for (i, &v) in x.iter().enumerate() {
            let back = a.q[i] as f32 * a.d[i / QK];
            assert!((back - v).abs() <= a.d[i / QK] * 0.51 + 1e-3);
        }
        let g = GroupActs::quantize(&x, 16);
        for (i, &v) in x.iter().enumerate() {
            assert!((g.q[i] as f32 * g.s[i / 16] - v).abs() <= g.s[i / 16] * 0.51);
        }
    }

    #[test]
    fn f32_and_f16_dots() {
        let w: Vec<f32> = (0..19).map(|i| i as f32 * 0.5 - 3.0).collect();
        let x: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.25).collect();
        let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
        let halves: Vec<u8> = w
            .iter()
            .flat_map(|v| f32_to_f16(*v).to_le_bytes())
            .collect();
        let exact: f32 = w.iter().zip(&x).map(|(a, b)| a * b).sum();
        assert!((dot_f32(&bytes, &x) - exact).abs() < 1e-4);
        assert!((dot_f16(&halves, &x) - exact).abs() < 1e-4);
    }
}
