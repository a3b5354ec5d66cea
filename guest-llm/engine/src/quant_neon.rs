//! NEON versions of the Q4_1 and Q8_0 row kernels (aarch64).
//!
//! Same arithmetic as the portable kernels in [`crate::quant`] and the AVX2 ones: exact
//! integer lanes (`lane j = sum of products j, j+8, j+16, j+24`), separate f32 multiply
//! and add per lane (`vmulq` then `vaddq`, never `vfmaq`), same final summation order.

use crate::half::f16_to_f32;
use crate::quant::{sum8, Q8Acts, Q4_1_BLOCK, Q8_0_BLOCK, QK};
use core::arch::aarch64::*;

#[inline(always)]
fn load_u8x16(b: &[u8]) -> uint8x16_t {
    let b = &b[..16];
    // SAFETY: `b` has exactly 16 readable bytes; NEON loads need no alignment.
    unsafe { vld1q_u8(b.as_ptr()) }
}

#[inline(always)]
fn load_i16x8(y: &[i16]) -> int16x8_t {
    let y = &y[..8];
    // SAFETY: `y` has exactly 8 readable `i16`; NEON loads need no alignment.
    unsafe { vld1q_s16(y.as_ptr()) }
}

/// Lanes 0..4 and 4..8 of a block product, as f32. `w` holds the widened weights of
/// elements 0..8, 8..16, 16..24, 24..32.
#[inline(always)]
fn lanes(w: [int16x8_t; 4], y: &[i16]) -> (float32x4_t, float32x4_t) {
    let y = &y[..QK];
    // SAFETY: NEON is part of the aarch64 target this module is compiled for.
    unsafe {
        let p0 = vmulq_s16(w[0], load_i16x8(&y[0..8]));
        let p1 = vmulq_s16(w[1], load_i16x8(&y[8..16]));
        let p2 = vmulq_s16(w[2], load_i16x8(&y[16..24]));
        let p3 = vmulq_s16(w[3], load_i16x8(&y[24..32]));
        // h[j] = p[j] + p[j + 16] for j in 0..16 (split as 0..8 and 8..16).
        let h_lo = vaddq_s16(p0, p2);
        let h_hi = vaddq_s16(p1, p3);
        // l[j] = h[j] + h[j + 8] in 32 bits.
        let l0 = vaddl_s16(vget_low_s16(h_lo), vget_low_s16(h_hi));
        let l1 = vaddl_high_s16(h_lo, h_hi);
        (vcvtq_f32_s32(l0), vcvtq_f32_s32(l1))
    }
}

#[inline(always)]
fn hsum(a: float32x4_t, b: float32x4_t) -> f32 {
    let mut v = [0.0f32; 8];
    // SAFETY: `v` has room for eight f32 values.
    unsafe {
        vst1q_f32(v.as_mut_ptr(), a);
        vst1q_f32(v.as_mut_ptr().add(4), b);
    }
    sum8(v)
}

/// NEON twin of [`crate::quant::dot_q4_1_n`].
#[inline(always)]
pub fn dot_q4_1_n<const T: usize>(row: &[u8], a: [&Q8Acts; T]) -> [f32; T] {
    let nb = row.len() / Q4_1_BLOCK;
    // SAFETY: NEON is part of the aarch64 target this module is compiled for; every
    // memory access goes through the bounds-checked helpers above.
    unsafe {
        let mut acc = [(vdupq_n_f32(0.0), vdupq_n_f32(0.0)); T];
        let mut accm = [[0.0f32; 2]; T];
        let mask = vdupq_n_u8(0x0f);
        for b in 0..nb {
            let blk = &row[b * Q4_1_BLOCK..(b + 1) * Q4_1_BLOCK];
            let dw = f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
            let mw = f16_to_f32(u16::from_le_bytes([blk[2], blk[3]]));
            let q = load_u8x16(&blk[4..]);
            let lo = vandq_u8(q, mask);
            let hi = vshrq_n_u8::<4>(q);
            let w = [
                vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(lo))),
                vreinterpretq_s16_u16(vmovl_high_u8(lo)),
                vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(hi))),
                vreinterpretq_s16_u16(vmovl_high_u8(hi)),
            ];
            for t in 0..T {
                let (f0, f1) = lanes(w, &a[t].q[b * QK..(b + 1) * QK]);
                let sc = vdupq_n_f32(dw * a[t].d[b]);
                acc[t].0 = vaddq_f32(acc[t].0, vmulq_f32(sc, f0));
                acc[t].1 = vaddq_f32(acc[t].1, vmulq_f32(sc, f1));
                accm[t][b & 1] += mw * a[t].s[b];
            }
        }
        let mut out = [0.0f32; T];
        for t in 0..T {
            out[t] = hsum(acc[t].0, acc[t].1) + (accm[t][0] + accm[t][1]);
        }
        out
    }
}

/// NEON twin of [`crate::quant::dot_q8_0_n`].
#[inline(always)]
pub fn dot_q8_0_n<const T: usize>(row: &[u8], a: [&Q8Acts; T]) -> [f32; T] {
    let nb = row.len() / Q8_0_BLOCK;
    // SAFETY: as in `dot_q4_1_n`.
    unsafe {
        let mut acc = [(vdupq_n_f32(0.0), vdupq_n_f32(0.0)); T];
        for b in 0..nb {
            let blk = &row[b * Q8_0_BLOCK..(b + 1) * Q8_0_BLOCK];
            let dw = f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
            let q0 = vreinterpretq_s8_u8(load_u8x16(&blk[2..18]));
            let q1 = vreinterpretq_s8_u8(load_u8x16(&blk[18..34]));
            let w = [
                vmovl_s8(vget_low_s8(q0)),
                vmovl_high_s8(q0),
                vmovl_s8(vget_low_s8(q1)),
                vmovl_high_s8(q1),
            ];
            for t in 0..T {
                let (f0, f1) = lanes(w, &a[t].q[b * QK..(b + 1) * QK]);
                let sc = vdupq_n_f32(dw * a[t].d[b]);
                acc[t].0 = vaddq_f32(acc[t].0, vmulq_f32(sc, f0));
                acc[t].1 = vaddq_f32(acc[t].1, vmulq_f32(sc, f1));
            }
        }
        let mut out = [0.0f32; T];
        for t in 0..T {
            out[t] = hsum(acc[t].0, acc[t].1);
        }
        out
    }
}
