//! AVX2 versions of the Q4_1 and Q8_0 row kernels (host builds with `std` only).
//!
//! They perform exactly the arithmetic of the portable kernels in [`crate::quant`]: the
//! same exact integer lanes (`lane j = sum of products j, j+8, j+16, j+24`), the same
//! separate f32 multiply and add per lane (no FMA), the same final summation order.
//! A test checks bit equality against the portable code.

use crate::half::f16_to_f32;
use crate::quant::{sum8, Q8Acts, Q4_1_BLOCK, Q8_0_BLOCK, QK};
use core::arch::x86_64::*;

/// Loads 16 bytes from `b[..16]`.
#[inline(always)]
fn load16(b: &[u8]) -> __m128i {
    let b = &b[..16];
    // SAFETY: `b` has exactly 16 readable bytes; the load is unaligned-tolerant.
    unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
}

/// Loads 16 `i16` values from `y[..16]`.
#[inline(always)]
fn load_i16x16(y: &[i16]) -> __m256i {
    let y = &y[..16];
    // SAFETY: `y` has exactly 16 readable `i16` (32 bytes); the load is unaligned-tolerant.
    unsafe { _mm256_loadu_si256(y.as_ptr().cast()) }
}

/// Integer lanes of a block whose weights are widened to `w0` (elements 0..16) and `w1`
/// (16..32), converted to f32.
#[inline]
#[target_feature(enable = "avx2")]
fn lanes(w0: __m256i, w1: __m256i, y: &[i16]) -> __m256 {
    let p0 = _mm256_mullo_epi16(w0, load_i16x16(&y[..16]));
    let p1 = _mm256_mullo_epi16(w1, load_i16x16(&y[16..32]));
    let h = _mm256_add_epi16(p0, p1);
    let lo = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(h));
    let hi = _mm256_cvtepi16_epi32(_mm256_extracti128_si256::<1>(h));
    _mm256_cvtepi32_ps(_mm256_add_epi32(lo, hi))
}

#[inline]
#[target_feature(enable = "avx2")]
fn hsum(v: __m256) -> f32 {
    let mut a = [0.0f32; 8];
    // SAFETY: `a` has room for eight f32 values.
    unsafe { _mm256_storeu_ps(a.as_mut_ptr(), v) };
    sum8(a)
}

/// AVX2 twin of [`crate::quant::dot_q4_1_n`].
#[target_feature(enable = "avx2")]
pub fn dot_q4_1_n<const T: usize>(row: &[u8], a: [&Q8Acts; T]) -> [f32; T] {
    let nb = row.len() / Q4_1_BLOCK;
    let mut acc = [_mm256_setzero_ps(); T];
    let mut accm = [[0.0f32; 2]; T];
    let mask = _mm_set1_epi8(0x0f);
    for b in 0..nb {
        let blk = &row[b * Q4_1_BLOCK..(b + 1) * Q4_1_BLOCK];
        let dw = f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
        let mw = f16_to_f32(u16::from_le_bytes([blk[2], blk[3]]));
        let q = load16(&blk[4..]);
        let w0 = _mm256_cvtepu8_epi16(_mm_and_si128(q, mask));
        let w1 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16::<4>(q), mask));
        for t in 0..T {
            let l = lanes(w0, w1, &a[t].q[b * QK..(b + 1) * QK]);
            let sc = _mm256_set1_ps(dw * a[t].d[b]);
            acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(sc, l));
            accm[t][b & 1] += mw * a[t].s[b];
        }
    }
    let mut out = [0.0f32; T];
    for t in 0..T {
        out[t] = hsum(acc[t]) + (accm[t][0] + accm[t][1]);
    }
    out
}

/// AVX2 twin of [`crate::quant::dot_q8_0_n`].
#[target_feature(enable = "avx2")]
pub fn dot_q8_0_n<const T: usize>(row: &[u8], a: [&Q8Acts; T]) -> [f32; T] {
    let nb = row.len() / Q8_0_BLOCK;
    let mut acc = [_mm256_setzero_ps(); T];
    for b in 0..nb {
        let blk = &row[b * Q8_0_BLOCK..(b + 1) * Q8_0_BLOCK];
        let dw = f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
        let w0 = _mm256_cvtepi8_epi16(load16(&blk[2..18]));
        let w1 = _mm256_cvtepi8_epi16(load16(&blk[18..34]));
        for t in 0..T {
            let l = lanes(w0, w1, &a[t].q[b * QK..(b + 1) * QK]);
            let sc = _mm256_set1_ps(dw * a[t].d[b]);
            acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(sc, l));
        }
    }
    let mut out = [0.0f32; T];
    for t in 0..T {
        out[t] = hsum(acc[t]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant;

    #[test]
    fn avx2_kernels_match_portable_bit_for_bit() {
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        let mut seed = 0x1234_5678u32;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let cols = 32 * 7;
        for _ in 0..20 {
            let x: std::vec::Vec<f32> = (0..cols)
                .map(|_| (rnd() % 2001) as f32 / 100.0 - 10.0)
                .collect();
            let acts = Q8Acts::quantize(&x);
            let q4: std::vec::Vec<u8> = (0..cols / 32 * Q4_1_BLOCK)
                .map(|_| rnd() as u8)
                .map(|b| b & 0x7b)
                .collect();
            let q8: std::vec::Vec<u8> = (0..cols / 32 * Q8_0_BLOCK)
                .map(|_| rnd() as u8)
                .map(|b| b & 0xbf)
                .collect();
            // SAFETY: AVX2 support was checked above.
            let (a4, a8) =
                unsafe { (dot_q4_1_n::<1>(&q4, [&acts]), dot_q8_0_n::<1>(&q8, [&acts])) };
            assert_eq!(a4[0].to_bits(), quant::dot_q4_1(&q4, &acts).to_bits());
            assert_eq!(a8[0].to_bits(), quant::dot_q8_0(&q8, &acts).to_bits());
        }
    }
}
