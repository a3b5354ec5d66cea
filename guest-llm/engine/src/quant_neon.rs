//! NEON kernels (aarch64): the 32-value block formats and the K formats (Q4_K, Q5_K,
//! Q6_K), both with weights unpacked in [`NEON_ORDER`] by 16-bit lane operations against
//! activations stored in that order, forming exactly the portable kernels' integers.
//!
//! The 32-value kernels compute exactly what [`crate::quant::dot32_n`] defines: each
//! block's exact integer dot product (weights unpacked to `i16` by 16-bit shifts and masks
//! in [`NEON_ORDER`], against activations stored in that order; same-width `mul`/`mla`
//! in `i16`, which cannot overflow (see [`dot_block`]), then pairs widened to `i32`; the
//! formats stored with an offset are corrected by `offset * sum(y)`), four blocks at a
//! time reduced to one vector of block sums, then [`crate::quant::block_value`]
//! lane-wise (`vmulq` then `vaddq`, never `vfmaq`) into accumulator `b % 8`, and
//! [`sum8`] at the end. Only same-width lane operations are used in the inner loop:
//! they are fast on hardware and are what QEMU's TCG (the partition's emulator) turns
//! into host vector code; widening and pairwise instructions are per-element helpers
//! there.
//!
//! Under an emulator every guest instruction counts, so the loops also avoid what costs
//! instructions without doing arithmetic: memory is read with `ld1` (see [`ld1`]; plain
//! vector loads become byte loads on the strict-align `aarch64-unknown-none` target),
//! several vectors per post-indexed run, and the weights of at most four blocks (16
//! vectors) are live at a time, so nothing is spilled to the stack and reloaded.

use crate::blocks::{f16_at, k_scales, Format, QK_K};
use crate::half::f16_to_f32;
use crate::kernels::{min_term, Acc};
use crate::quant::{block_value, f32b, format32, has_min, offset32, sum8, Q8Acts, Q8KActs, QK};
use core::arch::aarch64::*;

/// The 16 bytes at `p` as one `ld1 {v.16b}`. A plain vector load from a pointer of
/// alignment below 16 is split into byte loads on targets built with `strict-align`
/// (`aarch64-unknown-none`, the guests'), a dozen instructions per vector; `ld1` with byte
/// elements needs no alignment even with alignment checking on, so it is one
/// instruction everywhere. Lanes of wider elements are the same bytes (little-endian).
#[inline(always)]
fn ld1(b: &[u8; 16]) -> uint8x16_t {
    let v: uint8x16_t;
    // SAFETY: reads exactly the 16 bytes of `b`; `ld1` of byte elements has no
    // alignment requirement; no other state is touched.
    unsafe {
        core::arch::asm!(
            "ld1 {{{v:v}.16b}}, [{p}]",
            v = out(vreg) v,
            p = in(reg) b.as_ptr(),
            options(pure, readonly, nostack, preserves_flags)
        );
    }
    v
}

/// The 16 bytes at the start of `b` as a vector (see [`ld1`]).
#[inline(always)]
fn bytes16<T>(b: &[T]) -> uint8x16_t {
    // Whole elements cover the 16 bytes (a constant, checked at compile time in effect).
    assert!(16 % core::mem::size_of::<T>() == 0);
    let n = 16 / core::mem::size_of::<T>();
    let b = &b[..n];
    // SAFETY: `b` has `n` elements of `size_of::<T>()` bytes, 16 readable bytes; the
    // element types used here (`u8`, `i16`, `i32`, `f32`) have no invalid bit patterns.
    ld1(unsafe { &*(b.as_ptr() as *const [u8; 16]) })
}

/// The 32 bytes at the start of `b` as two vectors: two post-indexed `ld1` (see [`ld1`]),
/// with no separate address arithmetic between them (each instruction counts under an
/// emulator).
#[inline(always)]
fn ld1x2<T>(b: &[T]) -> [uint8x16_t; 2] {
    assert!(32 % core::mem::size_of::<T>() == 0);
    let b = &b[..32 / core::mem::size_of::<T>()];
    let (v0, v1): (uint8x16_t, uint8x16_t);
    // SAFETY: reads exactly the 32 bytes of `b` (element types without invalid bit
    // patterns, as in `bytes16`); `ld1` of byte elements has no alignment requirement;
    // the pointer register is a scratch copy.
    unsafe {
        core::arch::asm!(
            "ld1 {{{v0:v}.16b}}, [{p}], #16",
            "ld1 {{{v1:v}.16b}}, [{p}]",
            v0 = out(vreg) v0,
            v1 = out(vreg) v1,
            p = inout(reg) b.as_ptr() => _,
            options(pure, readonly, nostack, preserves_flags)
        );
    }
    [v0, v1]
}

/// The 64 bytes at the start of `b` as four vectors (as [`ld1x2`]).
#[inline(always)]
fn ld1x4<T>(b: &[T]) -> [uint8x16_t; 4] {
    assert!(64 % core::mem::size_of::<T>() == 0);
    let b = &b[..64 / core::mem::size_of::<T>()];
    let (v0, v1, v2, v3): (uint8x16_t, uint8x16_t, uint8x16_t, uint8x16_t);
    // SAFETY: as in `ld1x2`, for 64 bytes.
    unsafe {
        core::arch::asm!(
            "ld1 {{{v0:v}.16b}}, [{p}], #16",
            "ld1 {{{v1:v}.16b}}, [{p}], #16",
            "ld1 {{{v2:v}.16b}}, [{p}], #16",
            "ld1 {{{v3:v}.16b}}, [{p}]",
            v0 = out(vreg) v0,
            v1 = out(vreg) v1,
            v2 = out(vreg) v2,
            v3 = out(vreg) v3,
            p = inout(reg) b.as_ptr() => _,
            options(pure, readonly, nostack, preserves_flags)
        );
    }
    [v0, v1, v2, v3]
}

/// The 32 bytes at the start of `b` as two vectors of `u16` lanes.
#[inline(always)]
fn load_u16x8x2(b: &[u8]) -> [uint16x8_t; 2] {
    // SAFETY: NEON is part of the aarch64 target; a reinterpretation of lanes.
    ld1x2(b).map(|v| unsafe { vreinterpretq_u16_u8(v) })
}

/// The 32 activations at the start of `y` as four vectors.
#[inline(always)]
fn load_i16x8x4(y: &[i16]) -> [int16x8_t; 4] {
    // SAFETY: as in `load_u16x8x2`.
    ld1x4(y).map(|v| unsafe { vreinterpretq_s16_u8(v) })
}

#[inline(always)]
fn load_u8x16(b: &[u8]) -> uint8x16_t {
    bytes16(b)
}

#[inline(always)]
fn load_f32x4(v: &[f32]) -> float32x4_t {
    // SAFETY: NEON is part of the aarch64 target; a reinterpretation of lanes.
    unsafe { vreinterpretq_f32_u8(bytes16(v)) }
}

#[inline(always)]
fn load_i32x4(v: &[i32]) -> int32x4_t {
    // SAFETY: NEON is part of the aarch64 target; a reinterpretation of lanes.
    unsafe { vreinterpretq_s32_u8(bytes16(v)) }
}

/// The binary16 values at byte `at` of four consecutive blocks of `bb` bytes, as f32.
#[inline(always)]
fn halves4(blks: &[u8], bb: usize, at: usize) -> float32x4_t {
    let h = |i: usize| {
        f16_to_f32(u16::from_le_bytes([
            blks[i * bb + at],
            blks[i * bb + at + 1],
        ]))
    };
    load_f32x4(&[h(0), h(1), h(2), h(3)])
}

/// The element order in which [`unpack`] produces a block's 32 weights (four vectors of
/// eight `i16`: the even then odd elements of 0..16, the even then odd elements of
/// 16..32), and in which [`Q8Acts::q16`] stores the activations to match. Each vector
/// comes out of 16-bit lane arithmetic (shifts and masks of byte pairs), which emulators
/// such as QEMU's TCG run as host vector operations, unlike widening or pairwise NEON
/// instructions.
pub const NEON_ORDER: [u8; 32] = {
    let mut o = [0u8; 32];
    let mut j = 0;
    while j < 8 {
        o[j] = 2 * j as u8;
        o[8 + j] = 2 * j as u8 + 1;
        o[16 + j] = 16 + 2 * j as u8;
        o[24 + j] = 17 + 2 * j as u8;
        j += 1;
    }
    o
};

#[inline(always)]
fn load_u16x8(b: &[u8]) -> uint16x8_t {
    // SAFETY: NEON is part of the aarch64 target; the load is bounds-checked.
    unsafe { vreinterpretq_u16_u8(load_u8x16(b)) }
}

/// The fifth bits of a Q5 block (`qh`, bit `k` for element `k`; lanes 0 and 1 of
/// `qh16` hold its low and high 16 bits) as 16 for the elements of [`NEON_ORDER`], else 0.
/// `qh` comes in a vector load and is spread by lane duplication: as a `u32` it would be
/// four byte loads and three ORs on strict-align targets.
#[inline(always)]
fn fifth_bits(qh16: uint16x8_t) -> [uint16x8_t; 4] {
    const EVEN: [u16; 8] = [1, 1 << 2, 1 << 4, 1 << 6, 1 << 8, 1 << 10, 1 << 12, 1 << 14];
    const ODD: [u16; 8] = [
        1 << 1,
        1 << 3,
        1 << 5,
        1 << 7,
        1 << 9,
        1 << 11,
        1 << 13,
        1 << 15,
    ];
    // SAFETY: NEON is part of the aarch64 target.
    unsafe {
        let (even, odd) = (
            vreinterpretq_u16_u8(bytes16(&EVEN)),
            vreinterpretq_u16_u8(bytes16(&ODD)),
        );
        let (lo, hi) = (vdupq_laneq_u16::<0>(qh16), vdupq_laneq_u16::<1>(qh16));
        let sixteen = vdupq_n_u16(16);
        [
            vandq_u16(vtstq_u16(lo, even), sixteen),
            vandq_u16(vtstq_u16(lo, odd), sixteen),
            vandq_u16(vtstq_u16(hi, even), sixteen),
            vandq_u16(vtstq_u16(hi, odd), sixteen),
        ]
    }
}

/// A block of format `F` as 32 `i16` weights in [`NEON_ORDER`]: the stored unsigned
/// values (at most 31) of the 4- and 5-bit formats, the signed weights of Q8_0.
#[inline(always)]
fn unpack<const F: u8>(blk: &[u8]) -> [int16x8_t; 4] {
    // SAFETY: NEON is part of the aarch64 target this module is compiled for.
    unsafe {
        let nibbles = |qs: &[u8]| {
            // Lane i holds bytes 2i (low) and 2i + 1 (high); element j is the low nibble
            // of byte j, element j + 16 its high nibble.
            let q = load_u16x8(qs);
            let m = vdupq_n_u16(0x0f);
            [
                vandq_u16(q, m),
                vandq_u16(vshrq_n_u16::<8>(q), m),
                vandq_u16(vshrq_n_u16::<4>(q), m),
                vshrq_n_u16::<12>(q),
            ]
        };
        // `qh` is the 4 bytes at `at`, read as lanes 0 and 1 of 16 bytes from there.
        let with_bits = |n: [uint16x8_t; 4], at: usize| {
            let h = fifth_bits(load_u16x8(&blk[at..at + 16]));
            [
                vorrq_u16(n[0], h[0]),
                vorrq_u16(n[1], h[1]),
                vorrq_u16(n[2], h[2]),
                vorrq_u16(n[3], h[3]),
            ]
        };
        let u = match F {
            f32b::Q4_0 => nibbles(&blk[2..18]),
            f32b::Q4_1 => nibbles(&blk[4..20]),
            f32b::Q5_0 => with_bits(nibbles(&blk[6..22]), 2),
            f32b::Q5_1 => with_bits(nibbles(&blk[8..24]), 4),
            _ => {
                let [a, b] = load_u16x8x2(&blk[2..34]).map(|v| vreinterpretq_s16_u16(v));
                return [
                    vshrq_n_s16::<8>(vshlq_n_s16::<8>(a)),
                    vshrq_n_s16::<8>(a),
                    vshrq_n_s16::<8>(vshlq_n_s16::<8>(b)),
                    vshrq_n_s16::<8>(b),
                ];
            }
        };
        u.map(|v| vreinterpretq_s16_u16(v))
    }
}

/// The pairwise sums of the `i16` halves of each 32-bit lane, exact in `i32`.
#[inline(always)]
fn widen_pairs(v: int16x8_t) -> int32x4_t {
    // SAFETY: as in `unpack`.
    unsafe {
        let v = vreinterpretq_s32_s16(v);
        vaddq_s32(
            vshrq_n_s32::<16>(vshlq_n_s32::<16>(v)),
            vshrq_n_s32::<16>(v),
        )
    }
}

/// `w * y` over a block (32 values in [`NEON_ORDER`]), in four `i32` lanes (exact). The
/// 4- and 5-bit formats (`|w| <= 31`) sum four products per 16-bit lane (at most
/// 4 * 31 * 127); Q8_0 (`|w| <= 128`) only two (at most 2 * 128 * 127).
#[inline(always)]
fn dot_block<const F: u8>(w: &[int16x8_t; 4], y: &[i16]) -> int32x4_t {
    let [y0, y1, y2, y3] = load_i16x8x4(y);
    // SAFETY: as in `unpack`.
    unsafe {
        let a = vmlaq_s16(vmulq_s16(w[0], y0), w[1], y1);
        let b = vmlaq_s16(vmulq_s16(w[2], y2), w[3], y3);
        if F == f32b::Q8_0 {
            vaddq_s32(widen_pairs(a), widen_pairs(b))
        } else {
            widen_pairs(vaddq_s16(a, b))
        }
    }
}

/// Lane `i` = the sum of the four lanes of `v[i]`.
#[inline(always)]
fn reduce4(v: &[int32x4_t; 4]) -> int32x4_t {
    // SAFETY: as in `unpack`.
    unsafe { vpaddq_s32(vpaddq_s32(v[0], v[1]), vpaddq_s32(v[2], v[3])) }
}

/// Blocks `bh..bh + 4` (weights `w`, bytes from `hb`) against `T` inputs: their exact
/// block sums as one vector, then [`crate::quant::block_value`] lane-wise into
/// `acc[t][h]` (lanes `bh % 8..bh % 8 + 4`, so `h = bh / 4 % 2`).
#[inline(always)]
fn add4<const F: u8, const T: usize>(
    w: &[[int16x8_t; 4]; 4],
    hb: &[u8],
    bh: usize,
    a: &[&Q8Acts; T],
    acc: &mut [[float32x4_t; 2]; T],
    h: usize,
) {
    let bb = format32(F).block_bytes();
    // The offset correction `offset * sum(y)` as a shift (the offsets are 8 and 16).
    let shift = offset32(F).trailing_zeros() as i32;
    // SAFETY: as in `unpack`; memory goes through the bounds-checked helpers above.
    unsafe {
        let dw = halves4(hb, bb, 0);
        let mw = if has_min(F) {
            halves4(hb, bb, 2)
        } else {
            vdupq_n_f32(0.0)
        };
        for t in 0..T {
            let y = &a[t].q16[bh * QK..(bh + 4) * QK];
            let v = [
                dot_block::<F>(&w[0], &y[..QK]),
                dot_block::<F>(&w[1], &y[QK..2 * QK]),
                dot_block::<F>(&w[2], &y[2 * QK..3 * QK]),
                dot_block::<F>(&w[3], &y[3 * QK..4 * QK]),
            ];
            let mut isum = reduce4(&v);
            if offset32(F) != 0 {
                let ys = load_i32x4(&a[t].qsum[bh..bh + 4]);
                isum = vsubq_s32(isum, vshlq_s32(ys, vdupq_n_s32(shift)));
            }
            let da = load_f32x4(&a[t].d[bh..bh + 4]);
            let mut val = vmulq_f32(vmulq_f32(dw, da), vcvtq_f32_s32(isum));
            if has_min(F) {
                val = vaddq_f32(val, vmulq_f32(mw, load_f32x4(&a[t].s[bh..bh + 4])));
            }
            acc[t][h] = vaddq_f32(acc[t][h], val);
        }
    }
}

/// One row of the 32-value format `F` against `T` inputs; the same bits as
/// [`crate::quant::dot32_n`]. Blocks go in groups of four: unpacked once (16 vectors,
/// which stay in registers), then multiplied with each input. Larger groups spill the
/// unpacked weights to the stack, and under TCG every reload is a memory access.
#[inline(always)]
pub fn dot32_neon_n<const F: u8, const T: usize>(row: &[u8], a: [&Q8Acts; T]) -> [f32; T] {
    let bb = format32(F).block_bytes();
    let nb = row.len() / bb;
    let groups = nb / 4;
    // SAFETY: as in `unpack`; every memory access goes through the bounds-checked
    // helpers above.
    unsafe {
        let mut acc = [[vdupq_n_f32(0.0); 2]; T];
        for g in 0..groups {
            let b0 = g * 4;
            let blks = &row[b0 * bb..(b0 + 4) * bb];
            let w: [[int16x8_t; 4]; 4] =
                core::array::from_fn(|i| unpack::<F>(&blks[i * bb..(i + 1) * bb]));
            add4::<F, T>(&w, blks, b0, &a, &mut acc, g % 2);
        }
        let tail = groups * 4;
        let mut out = [0.0f32; T];
        for t in 0..T {
            // A vector as a value of the same size (lanes in order).
            let lanes4 = |v: float32x4_t| core::mem::transmute::<float32x4_t, [f32; 4]>(v);
            let (lo, hi) = (lanes4(acc[t][0]), lanes4(acc[t][1]));
            let mut lanes = [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1], hi[2], hi[3]];
            for b in tail..nb {
                let blk = &row[b * bb..(b + 1) * bb];
                let v = dot_block::<F>(&unpack::<F>(blk), &a[t].q16[b * QK..(b + 1) * QK]);
                let isum = vaddvq_s32(v) - offset32(F) * a[t].qsum[b];
                lanes[b % 8] += block_value::<F>(blk, a[t], b, isum);
            }
            out[t] = sum8(lanes);
        }
        out
    }
}

crate::quant::named_dot32!(dot32_neon_n, #[inline(always)]);

/// `v >> n` for the even `n` below 16 (a constant shift once inlined into the unrolled
/// loops; a same-width lane operation, unlike shifts by a register under TCG).
#[inline(always)]
fn shr_even(v: uint16x8_t, n: u32) -> uint16x8_t {
    // SAFETY: as in `unpack`.
    unsafe {
        match n {
            0 => v,
            2 => vshrq_n_u16::<2>(v),
            4 => vshrq_n_u16::<4>(v),
            6 => vshrq_n_u16::<6>(v),
            8 => vshrq_n_u16::<8>(v),
            10 => vshrq_n_u16::<10>(v),
            12 => vshrq_n_u16::<12>(v),
            _ => vshrq_n_u16::<14>(v),
        }
    }
}

/// Nibbles of the 32 bytes `b[..32]` in [`NEON_ORDER`] as `i16`: the low nibbles if
/// `shift` is 0, the high ones if 4.
#[inline(always)]
fn nibbles_k(b: &[u8], shift: u32) -> [uint16x8_t; 4] {
    let [q0, q1] = load_u16x8x2(b);
    // SAFETY: as in `unpack`.
    unsafe {
        let m = vdupq_n_u16(0x0f);
        [
            vandq_u16(shr_even(q0, shift), m),
            vandq_u16(shr_even(q0, shift + 8), m),
            vandq_u16(shr_even(q1, shift), m),
            vandq_u16(shr_even(q1, shift + 8), m),
        ]
    }
}

/// `sum(w[i] * y[i])` over one sub-block of 32 values in [`NEON_ORDER`] (`|w| <= 32`:
/// four products per 16-bit lane, at most 4 * 32 * 127), as four `i32` lanes (exact).
#[inline(always)]
fn dot32_k(w: &[int16x8_t; 4], y: &[i16]) -> int32x4_t {
    let y = load_i16x8x4(y);
    // SAFETY: as in `unpack`.
    unsafe {
        let a = vmlaq_s16(vmulq_s16(w[0], y[0]), w[1], y[1]);
        let a = vmlaq_s16(a, w[2], y[2]);
        widen_pairs(vmlaq_s16(a, w[3], y[3]))
    }
}

/// The Q4_K/Q5_K kernel: `unpack(blk, j)` gives the 32 unsigned values of sub-block `j`
/// in [`NEON_ORDER`]. Per block and input, `isum = sum(sc[j] * sum(q * y))` (exactly
/// the portable kernel's integer, here in same-width lanes) and the portable float
/// formula.
#[inline(always)]
fn dot_k4<const T: usize>(
    format: Format,
    row: &[u8],
    a: [&Q8KActs; T],
    unpack: impl Fn(&[u8], usize) -> [uint16x8_t; 4],
) -> [f32; T] {
    let mut acc = [Acc::default(); T];
    // SAFETY: as in `unpack`.
    unsafe {
        for (b, blk) in row.chunks_exact(format.block_bytes()).enumerate() {
            let d = f16_at(blk, 0);
            let dmin = f16_at(blk, 2);
            let (sc, mn) = k_scales(&blk[4..16]);
            let mut v = [vdupq_n_s32(0); T];
            // Four sub-blocks at a time (16 vectors, kept in registers; all eight spill).
            for half in 0..2 {
                let w: [[int16x8_t; 4]; 4] = core::array::from_fn(|i| {
                    unpack(blk, 4 * half + i).map(|v| vreinterpretq_s16_u16(v))
                });
                for t in 0..T {
                    let y = &a[t].qn[b * QK_K..(b + 1) * QK_K];
                    for (i, w) in w.iter().enumerate() {
                        let j = 4 * half + i;
                        let s = dot32_k(w, &y[32 * j..32 * j + 32]);
                        v[t] = vmlaq_s32(v[t], s, vdupq_n_s32(sc[j] as i32));
                    }
                }
            }
            for t in 0..T {
                let isum = vaddvq_s32(v[t]);
                let msum = min_term(&mn, &a[t].bsums[16 * b..16 * b + 16]);
                let yd = a[t].d[b];
                acc[t].add(b, (d * yd) * isum as f32 - (dmin * yd) * msum as f32);
            }
        }
    }
    core::array::from_fn(|t| acc[t].sum())
}

/// Dot products of a Q4_K row with `T` Q8_K activation vectors (the same bits as
/// [`crate::kernels::portable::dot_q4_k_n`]).
#[inline(always)]
pub fn dot_q4_k_n<const T: usize>(row: &[u8], a: [&Q8KActs; T]) -> [f32; T] {
    dot_k4(Format::Q4_K, row, a, |blk, j| {
        nibbles_k(&blk[16 + 32 * (j / 2)..], 4 * (j as u32 % 2))
    })
}

/// Dot products of a Q5_K row with `T` Q8_K activation vectors (the same bits as
/// [`crate::kernels::portable::dot_q5_k_n`]).
#[inline(always)]
pub fn dot_q5_k_n<const T: usize>(row: &[u8], a: [&Q8KActs; T]) -> [f32; T] {
    dot_k4(Format::Q5_K, row, a, |blk, j| {
        let n = nibbles_k(&blk[48 + 32 * (j / 2)..], 4 * (j as u32 % 2));
        // The fifth bit of value l is bit j of qh[l]: bit j (even l) or j + 8 (odd l) of
        // the 16-bit lanes.
        let [h0, h1] = load_u16x8x2(&blk[16..48]);
        // SAFETY: as in `unpack`.
        unsafe {
            let (ev, od) = (vdupq_n_u16(1 << j), vdupq_n_u16(1 << (j + 8)));
            let sixteen = vdupq_n_u16(16);
            let bit = |h: uint16x8_t, m: uint16x8_t| vandq_u16(vtstq_u16(h, m), sixteen);
            [
                vorrq_u16(n[0], bit(h0, ev)),
                vorrq_u16(n[1], bit(h0, od)),
                vorrq_u16(n[2], bit(h1, ev)),
                vorrq_u16(n[3], bit(h1, od)),
            ]
        }
    })
}

/// Dot products of a Q6_K row with `T` Q8_K activation vectors (the same bits as
/// [`crate::kernels::portable::dot_q6_k_n`]): signed values `q - 32` in same-width
/// lanes, each 16-value sub-block's sum times its scale in `i32` (exact).
#[inline(always)]
pub fn dot_q6_k_n<const T: usize>(row: &[u8], a: [&Q8KActs; T]) -> [f32; T] {
    let mut acc = [Acc::default(); T];
    // SAFETY: as in `unpack`.
    unsafe {
        for (b, blk) in row.chunks_exact(Format::Q6_K.block_bytes()).enumerate() {
            let d = f16_at(blk, 208);
            let sc: [int32x4_t; 16] =
                core::array::from_fn(|j| vdupq_n_s32(blk[192 + j] as i8 as i32));
            let mut v = [vdupq_n_s32(0); T];
            // Four chunks of 32 values at a time (16 vectors, kept in registers).
            for half in 0..2 {
                let w: [[int16x8_t; 4]; 4] = core::array::from_fn(|i| {
                    let (lo, nib_shift, hi, h_shift) = crate::blocks::q6k_chunk(4 * half + i);
                    let n = nibbles_k(&blk[lo..], nib_shift);
                    let [h0, h1] = load_u16x8x2(&blk[hi..hi + 32]);
                    let (m, off) = (vdupq_n_u16(3), vdupq_n_s16(32));
                    let top =
                        |h: uint16x8_t, n: u32| vshlq_n_u16::<4>(vandq_u16(shr_even(h, n), m));
                    let v = [
                        vorrq_u16(n[0], top(h0, h_shift)),
                        vorrq_u16(n[1], top(h0, h_shift + 8)),
                        vorrq_u16(n[2], top(h1, h_shift)),
                        vorrq_u16(n[3], top(h1, h_shift + 8)),
                    ];
                    v.map(|v| vsubq_s16(vreinterpretq_s16_u16(v), off))
                });
                for t in 0..T {
                    let y = &a[t].qn[b * QK_K..(b + 1) * QK_K];
                    for (i, w) in w.iter().enumerate() {
                        let k = 4 * half + i;
                        let y = load_i16x8x4(&y[32 * k..32 * k + 32]);
                        // Values 0..16 (sub-block 2k) and 16..32 (2k + 1): two products
                        // per lane.
                        let lo = vmlaq_s16(vmulq_s16(w[0], y[0]), w[1], y[1]);
                        let hi = vmlaq_s16(vmulq_s16(w[2], y[2]), w[3], y[3]);
                        v[t] = vmlaq_s32(v[t], widen_pairs(lo), sc[2 * k]);
                        v[t] = vmlaq_s32(v[t], widen_pairs(hi), sc[2 * k + 1]);
                    }
                }
            }
            for t in 0..T {
                acc[t].add(b, (d * a[t].d[b]) * vaddvq_s32(v[t]) as f32);
            }
        }
    }
    core::array::from_fn(|t| acc[t].sum())
}
