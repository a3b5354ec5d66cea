//! x86-64 kernels (host builds with `std` only): the 32-value block formats with AVX2
//! (`maddubs`/`madd`) and with AVX-512 VNNI (`vpdpbusd` on 256-bit vectors), and the
//! K-format kernels with AVX2 byte products (`maddubs`, then `madd` by the sub-block
//! scales; with VNNI, `vpdpwssd` fuses that `madd` with the add), which form the same
//! exact integer sums as [`crate::kernels::portable`]. For eight inputs (prompt
//! batches) the K kernels put the inputs in the vector lanes after one reduction per
//! block, so the scale terms and float formula run once for all eight.
//!
//! The 32-value kernels compute exactly what [`crate::quant::dot32_n`] defines: each
//! block's exact integer dot product (formed here as unsigned weight bytes times signed
//! activation bytes, then corrected by `offset * sum(y)` for the formats stored with an
//! offset; Q8_0 multiplies `|w|` by `y` carrying the sign of `w`; no intermediate can
//! saturate: `maddubs` pairs are at most 2 * 128 * 127), eight blocks at a time reduced
//! to one vector of block sums, then [`crate::quant::block_value`] lane-wise (lane `i`
//! is block `b % 8 = i`) with separate multiplies and adds, and [`sum8`] at the end.
//! Tests check bit equality against the portable code.

use crate::blocks::{f16_at, k_scales, u32_at, Format, QK_K};
use crate::kernels::{min_term, Acc};
use crate::quant::{block_value, f32b, format32, has_min, offset32, sum8, Q8Acts, Q8KActs, QK};
use core::arch::x86_64::*;

/// Loads 16 bytes from `b[..16]`.
#[inline(always)]
fn load16(b: &[u8]) -> __m128i {
    let b = &b[..16];
    // SAFETY: `b` has exactly 16 readable bytes; the load is unaligned-tolerant.
    unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
}

/// Loads 32 signed bytes from `y[..32]`.
#[inline(always)]
fn load_i8x32(y: &[i8]) -> __m256i {
    let y = &y[..32];
    // SAFETY: `y` has exactly 32 readable bytes; the load is unaligned-tolerant.
    unsafe { _mm256_loadu_si256(y.as_ptr().cast()) }
}

/// Loads 8 `f32` values from `v[..8]`.
#[inline(always)]
fn load_f32x8(v: &[f32]) -> __m256 {
    let v = &v[..8];
    // SAFETY: `v` has exactly 8 readable `f32`; the load is unaligned-tolerant.
    unsafe { _mm256_loadu_ps(v.as_ptr()) }
}

/// Loads 8 `i32` values from `v[..8]`.
#[inline(always)]
fn load_i32x8(v: &[i32]) -> __m256i {
    let v = &v[..8];
    // SAFETY: `v` has exactly 8 readable `i32` (32 bytes); the load is unaligned-tolerant.
    unsafe { _mm256_loadu_si256(v.as_ptr().cast()) }
}

/// The binary16 values at byte `at` of eight consecutive blocks of `bb` bytes, as f32
/// (`vcvtph2ps` converts exactly, as [`crate::half::f16_to_f32`] does).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn halves8(blks: &[u8], bb: usize, at: usize) -> __m256 {
    let h = |i: usize| i16::from_le_bytes([blks[i * bb + at], blks[i * bb + at + 1]]);
    _mm256_cvtph_ps(_mm_set_epi16(
        h(7),
        h(6),
        h(5),
        h(4),
        h(3),
        h(2),
        h(1),
        h(0),
    ))
}

/// A block of format `F` as the unsigned operand `u` of the byte products and the sign
/// source `s` for the activations (Q8_0: `u = |w|`, `s = w`; otherwise `u` = the stored
/// unsigned values and `s` unused).
#[inline]
#[target_feature(enable = "avx2")]
fn unpack<const F: u8>(blk: &[u8]) -> (__m256i, __m256i) {
    let z = _mm256_setzero_si256();
    match F {
        f32b::Q4_0 => (nib16(&blk[2..18]), z),
        f32b::Q4_1 => (nib16(&blk[4..20]), z),
        f32b::Q5_0 => (or(nib16(&blk[6..22]), bits32(u32_at(blk, 2))), z),
        f32b::Q5_1 => (or(nib16(&blk[8..24]), bits32(u32_at(blk, 4))), z),
        _ => {
            let w = load32(&blk[2..34]);
            (_mm256_abs_epi8(w), w)
        }
    }
}

/// The activations as the signed operand of the byte products (`y` with the sign of `s`
/// for Q8_0, see [`unpack`]).
#[inline]
#[target_feature(enable = "avx2")]
fn signed<const F: u8>(y: __m256i, s: __m256i) -> __m256i {
    if F == f32b::Q8_0 {
        _mm256_sign_epi8(y, s)
    } else {
        y
    }
}

/// `u * y` summed in eight `i32` lanes with AVX2: `maddubs` forms pairs in `i16`
/// (at most 2 * 128 * 127, no saturation), `madd` by 1 widens and adds pairs.
#[inline]
#[target_feature(enable = "avx2")]
fn dot_bytes_avx2(u: __m256i, y: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), _mm256_set1_epi16(1))
}

/// `u * y` summed in eight `i32` lanes with one `vpdpbusd`.
#[inline]
#[target_feature(enable = "avx2,avx512vnni,avx512vl")]
fn dot_bytes_vnni(u: __m256i, y: __m256i) -> __m256i {
    _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, y)
}

/// Lane `i` = the sum of the eight lanes of `v[i]` (exact integer sums).
#[inline]
#[target_feature(enable = "avx2")]
fn reduce8(v: &[__m256i; 8]) -> __m256i {
    let h01 = _mm256_hadd_epi32(v[0], v[1]);
    let h23 = _mm256_hadd_epi32(v[2], v[3]);
    let h45 = _mm256_hadd_epi32(v[4], v[5]);
    let h67 = _mm256_hadd_epi32(v[6], v[7]);
    // Per 128-bit half: the low / high four lanes of blocks 0..4 (4..8).
    let h03 = _mm256_hadd_epi32(h01, h23);
    let h47 = _mm256_hadd_epi32(h45, h67);
    _mm256_add_epi32(
        _mm256_permute2x128_si256::<0x20>(h03, h47),
        _mm256_permute2x128_si256::<0x31>(h03, h47),
    )
}

/// Lane `i` = the sum of the eight lanes of `v[i]` (exact integer sums).
#[inline]
#[target_feature(enable = "avx2")]
fn reduce4(v: &[__m256i; 4]) -> __m128i {
    let h03 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    _mm_add_epi32(
        _mm256_castsi256_si128(h03),
        _mm256_extracti128_si256::<1>(h03),
    )
}

/// The binary16 values at byte `at` of four consecutive blocks of `bb` bytes, as f32.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn halves4(blks: &[u8], bb: usize, at: usize) -> __m128 {
    let h = |i: usize| i16::from_le_bytes([blks[i * bb + at], blks[i * bb + at + 1]]);
    _mm_cvtph_ps(_mm_set_epi16(0, 0, 0, 0, h(3), h(2), h(1), h(0)))
}

/// [`crate::quant::block_value`] of blocks `b0..b0 + 8` against input `a`, lane `i` for
/// block `b0 + i`: the exact sums `isum` less the format's offset times the input sums, times
/// the weight scales `dw` and the input scales, plus `mw` times the input sums for the
/// formats with a minimum; the portable formula, operation for operation.
#[inline]
#[target_feature(enable = "avx2")]
fn block_values8<const F: u8>(
    isum: __m256i,
    dw: __m256,
    mw: __m256,
    a: &Q8Acts,
    b0: usize,
) -> __m256 {
    let mut isum = isum;
    if offset32(F) != 0 {
        let ys = load_i32x8(&a.qsum[b0..b0 + 8]);
        let off = _mm256_mullo_epi32(ys, _mm256_set1_epi32(offset32(F)));
        isum = _mm256_sub_epi32(isum, off);
    }
    let da = load_f32x8(&a.d[b0..b0 + 8]);
    let val = _mm256_mul_ps(_mm256_mul_ps(dw, da), _mm256_cvtepi32_ps(isum));
    if has_min(F) {
        _mm256_add_ps(val, _mm256_mul_ps(mw, load_f32x8(&a.s[b0..b0 + 8])))
    } else {
        val
    }
}

/// [`block_values8`] for the four blocks `b0..b0 + 4`.
#[inline]
#[target_feature(enable = "avx2")]
fn block_values4<const F: u8>(
    isum: __m128i,
    dw: __m128,
    mw: __m128,
    a: &Q8Acts,
    b0: usize,
) -> __m128 {
    let mut isum = isum;
    if offset32(F) != 0 {
        let ys = load_i32x4(&a.qsum[b0..b0 + 4]);
        let off = _mm_mullo_epi32(ys, _mm_set1_epi32(offset32(F)));
        isum = _mm_sub_epi32(isum, off);
    }
    let da = load_f32x4(&a.d[b0..b0 + 4]);
    let val = _mm_mul_ps(_mm_mul_ps(dw, da), _mm_cvtepi32_ps(isum));
    if has_min(F) {
        _mm_add_ps(val, _mm_mul_ps(mw, load_f32x4(&a.s[b0..b0 + 4])))
    } else {
        val
    }
}

/// Loads 4 `f32` values from `v[..4]`.
#[inline(always)]
fn load_f32x4(v: &[f32]) -> __m128 {
    let v = &v[..4];
    // SAFETY: `v` has exactly 4 readable `f32`; the load is unaligned-tolerant.
    unsafe { _mm_loadu_ps(v.as_ptr()) }
}

/// Loads 4 `i32` values from `v[..4]`.
#[inline(always)]
fn load_i32x4(v: &[i32]) -> __m128i {
    let v = &v[..4];
    // SAFETY: `v` has exactly 4 readable `i32` (16 bytes); the load is unaligned-tolerant.
    unsafe { _mm_loadu_si128(v.as_ptr().cast()) }
}

/// Writes the layout of `q` (32-value blocks of activations) that the eight-input
/// kernels read (`qt`): each group of eight blocks as eight 32-byte vectors, vector `k`
/// holding in its 4-byte lane `i` bytes `4k..4k + 4` of block `i` (an 8 x 8 transpose of
/// 4-byte units, [`transpose8`] does the same to the weights); then, if four or more
/// blocks remain, four of them as four vectors, vector `k` holding in lane `i < 4` bytes
/// `4k..` of block `i` and in lane `4 + i` bytes `4(k + 4)..` of block `i` (what the
/// first two steps of [`transpose8`] make of four blocks). Fewer blocks are not copied.
pub fn transpose_acts(q: &[i8], qt: &mut std::vec::Vec<i8>) {
    let nb = q.len() / QK;
    let groups = nb / 8;
    let tail4 = nb - 8 * groups >= 4;
    qt.resize(groups * 8 * QK + if tail4 { 4 * QK } else { 0 }, 0);
    for g in 0..groups {
        let (src, dst) = (&q[g * 8 * QK..], &mut qt[g * 8 * QK..]);
        for k in 0..8 {
            for i in 0..8 {
                let at = (k * 8 + i) * 4;
                dst[at..at + 4].copy_from_slice(&src[i * QK + 4 * k..i * QK + 4 * k + 4]);
            }
        }
    }
    if tail4 {
        let (src, dst) = (&q[groups * 8 * QK..], &mut qt[groups * 8 * QK..]);
        for k in 0..4 {
            for i in 0..4 {
                for (lane, part) in [(i, k), (4 + i, k + 4)] {
                    let at = (k * 8 + lane) * 4;
                    dst[at..at + 4].copy_from_slice(&src[i * QK + 4 * part..i * QK + 4 * part + 4]);
                }
            }
        }
    }
}

/// The first two steps of an 8 x 8 transpose of 4-byte units, on four vectors: vector
/// `k` of the result holds in lane `i < 4` unit `k` of `v[i]` and in lane `4 + i` unit
/// `k + 4` of `v[i]`.
#[inline]
#[target_feature(enable = "avx2")]
fn transpose4(v: [__m256i; 4]) -> [__m256i; 4] {
    let t0 = _mm256_unpacklo_epi32(v[0], v[1]);
    let t1 = _mm256_unpackhi_epi32(v[0], v[1]);
    let t2 = _mm256_unpacklo_epi32(v[2], v[3]);
    let t3 = _mm256_unpackhi_epi32(v[2], v[3]);
    [
        _mm256_unpacklo_epi64(t0, t2),
        _mm256_unpackhi_epi64(t0, t2),
        _mm256_unpacklo_epi64(t1, t3),
        _mm256_unpackhi_epi64(t1, t3),
    ]
}

/// The 8 x 8 transpose of 4-byte units: vector `k` of the result holds in lane `i` unit
/// `k` of `v[i]` (the layout of [`transpose_acts`]).
#[inline]
#[target_feature(enable = "avx2")]
fn transpose8(v: &[__m256i; 8]) -> [__m256i; 8] {
    let lo = transpose4([v[0], v[1], v[2], v[3]]);
    let hi = transpose4([v[4], v[5], v[6], v[7]]);
    core::array::from_fn(|k| {
        if k < 4 {
            _mm256_permute2x128_si256::<0x20>(lo[k], hi[k])
        } else {
            _mm256_permute2x128_si256::<0x31>(lo[k - 4], hi[k - 4])
        }
    })
}

/// Lane `i` = [`sum8`] of the lanes of `v[i]`, in its order: two rounds of pairwise
/// `hadd` give `(x0 + x1) + (x2 + x3)` and `(x4 + x5) + (x6 + x7)` in the low and high
/// halves, which the final add combines.
#[inline]
#[target_feature(enable = "avx2")]
fn sum8_x4(v: [__m256; 4]) -> __m128 {
    let h = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
    _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h))
}

/// `acc + u * y` (sums of four byte products per `i32` lane) with AVX2.
#[inline]
#[target_feature(enable = "avx2")]
fn dot_bytes_acc_avx2(acc: __m256i, u: __m256i, y: __m256i) -> __m256i {
    _mm256_add_epi32(acc, dot_bytes_avx2(u, y))
}

/// `acc + u * y` (sums of four byte products per `i32` lane) with one `vpdpbusd`.
#[inline]
#[target_feature(enable = "avx2,avx512vnni,avx512vl")]
fn dot_bytes_acc_vnni(acc: __m256i, u: __m256i, y: __m256i) -> __m256i {
    _mm256_dpbusd_epi32(acc, u, y)
}

/// Generates `$name::<F, N>`, a 32-value block kernel for `N` inputs (prompt batches)
/// whose byte products are accumulated by `$dot` (`acc + u * y` per 4-byte lane),
/// compiled for `$features`. The weights of eight blocks are transposed once
/// ([`transpose8`]) and the inputs come transposed the same way ([`transpose_acts`]), so
/// eight accumulating byte products leave block `i`'s exact integer sum in lane `i` with
/// no horizontal sums; the rest is exactly the generic kernel's arithmetic.
macro_rules! dot32_x8_kernel {
    ($name:ident, $features:literal, $dot:ident) => {
        /// One row of the 32-value format `F` against `N` inputs; the same bits as
        /// [`crate::quant::dot32_n`].
        #[inline]
        #[target_feature(enable = $features)]
        fn $name<const F: u8, const N: usize>(row: &[u8], a: [&Q8Acts; N]) -> [f32; N] {
            let bb = format32(F).block_bytes();
            let nb = row.len() / bb;
            let groups = nb / 8;
            let mut acc = [_mm256_setzero_ps(); N];
            for g in 0..groups {
                let b0 = g * 8;
                let blks = &row[b0 * bb..(b0 + 8) * bb];
                let mut u = [_mm256_setzero_si256(); 8];
                let mut s = [_mm256_setzero_si256(); 8];
                for i in 0..8 {
                    (u[i], s[i]) = unpack::<F>(&blks[i * bb..(i + 1) * bb]);
                }
                let u = transpose8(&u);
                let s = if F == f32b::Q8_0 { transpose8(&s) } else { s };
                let dw = halves8(blks, bb, 0);
                let mw = if has_min(F) {
                    halves8(blks, bb, 2)
                } else {
                    _mm256_setzero_ps()
                };
                for t in 0..N {
                    let y = &a[t].qt[b0 * QK..(b0 + 8) * QK];
                    let mut v0 = _mm256_setzero_si256();
                    let mut v1 = _mm256_setzero_si256();
                    for k in (0..8).step_by(2) {
                        let y0 = load_i8x32(&y[k * QK..(k + 1) * QK]);
                        let y1 = load_i8x32(&y[(k + 1) * QK..(k + 2) * QK]);
                        v0 = $dot(v0, u[k], signed::<F>(y0, s[k]));
                        v1 = $dot(v1, u[k + 1], signed::<F>(y1, s[k + 1]));
                    }
                    let isum = _mm256_add_epi32(v0, v1);
                    let val = block_values8::<F>(isum, dw, mw, a[t], b0);
                    acc[t] = _mm256_add_ps(acc[t], val);
                }
            }
            // Four more blocks (lanes 0..4: `b % 8` of blocks `8g..8g + 4`): their
            // units sit in lanes `i` and `4 + i` after [`transpose4`], added at the end.
            let mut tail = groups * 8;
            if nb - tail >= 4 {
                let b0 = tail;
                let blks = &row[b0 * bb..(b0 + 4) * bb];
                let mut u = [_mm256_setzero_si256(); 4];
                let mut s = [_mm256_setzero_si256(); 4];
                for i in 0..4 {
                    (u[i], s[i]) = unpack::<F>(&blks[i * bb..(i + 1) * bb]);
                }
                let u = transpose4(u);
                let s = if F == f32b::Q8_0 { transpose4(s) } else { s };
                let dw = halves4(blks, bb, 0);
                let mw = if has_min(F) {
                    halves4(blks, bb, 2)
                } else {
                    _mm_setzero_ps()
                };
                for t in 0..N {
                    let y = &a[t].qt[b0 * QK..(b0 + 4) * QK];
                    let mut v = _mm256_setzero_si256();
                    for k in 0..4 {
                        let yk = load_i8x32(&y[k * QK..(k + 1) * QK]);
                        v = $dot(v, u[k], signed::<F>(yk, s[k]));
                    }
                    let isum =
                        _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
                    let val = block_values4::<F>(isum, dw, mw, a[t], b0);
                    acc[t] = _mm256_add_ps(acc[t], _mm256_set_m128(_mm_set1_ps(-0.0), val));
                }
                tail += 4;
            }
            let mut out = [0.0f32; N];
            if tail == nb && N.is_multiple_of(4) {
                for (o, acc) in out.chunks_exact_mut(4).zip(acc.chunks_exact(4)) {
                    let s = sum8_x4([acc[0], acc[1], acc[2], acc[3]]);
                    // SAFETY: `o` has exactly 4 writable `f32`.
                    unsafe { _mm_storeu_ps(o.as_mut_ptr(), s) };
                }
                return out;
            }
            for t in 0..N {
                let mut lanes = [0.0f32; 8];
                // SAFETY: `lanes` has room for eight f32 values.
                unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc[t]) };
                for b in tail..nb {
                    let blk = &row[b * bb..(b + 1) * bb];
                    let (u, s) = unpack::<F>(blk);
                    let yi = load_i8x32(&a[t].q[b * QK..(b + 1) * QK]);
                    let isum = hsum_i32($dot(_mm256_setzero_si256(), u, signed::<F>(yi, s)))
                        - offset32(F) * a[t].qsum[b];
                    lanes[b % 8] += block_value::<F>(blk, a[t], b, isum);
                }
                out[t] = sum8(lanes);
            }
            out
        }
    };
}

dot32_x8_kernel!(dot32_x8_avx2, "avx2,f16c", dot_bytes_acc_avx2);
dot32_x8_kernel!(
    dot32_x8_vnni,
    "avx2,f16c,avx512vnni,avx512vl",
    dot_bytes_acc_vnni
);

/// Generates a 32-value block kernel `$name::<F, T>` (see the module documentation)
/// whose byte products are `$dot`, compiled for `$features`, with `$x8` for four or more
/// inputs.
macro_rules! dot32_kernel {
    ($name:ident, $features:literal, $dot:ident, $x8:ident) => {
        /// One row of the 32-value format `F` against `T` inputs; the same bits as
        /// [`crate::quant::dot32_n`].
        #[target_feature(enable = $features)]
        pub fn $name<const F: u8, const T: usize>(row: &[u8], a: [&Q8Acts; T]) -> [f32; T] {
            if T >= 4 {
                return $x8::<F, T>(row, a);
            }
            let bb = format32(F).block_bytes();
            let nb = row.len() / bb;
            let groups = nb / 8;
            let mut acc = [_mm256_setzero_ps(); T];
            for g in 0..groups {
                let b0 = g * 8;
                let blks = &row[b0 * bb..(b0 + 8) * bb];
                let mut u = [_mm256_setzero_si256(); 8];
                let mut s = [_mm256_setzero_si256(); 8];
                for i in 0..8 {
                    (u[i], s[i]) = unpack::<F>(&blks[i * bb..(i + 1) * bb]);
                }
                let dw = halves8(blks, bb, 0);
                let mw = if has_min(F) {
                    halves8(blks, bb, 2)
                } else {
                    _mm256_setzero_ps()
                };
                for t in 0..T {
                    let y = &a[t].q[b0 * QK..(b0 + 8) * QK];
                    let mut v = [_mm256_setzero_si256(); 8];
                    for i in 0..8 {
                        let yi = load_i8x32(&y[i * QK..(i + 1) * QK]);
                        v[i] = $dot(u[i], signed::<F>(yi, s[i]));
                    }
                    let val = block_values8::<F>(reduce8(&v), dw, mw, a[t], b0);
                    acc[t] = _mm256_add_ps(acc[t], val);
                }
            }
            // Four more blocks (lanes 0..4: `b % 8` of blocks `8g..8g + 4`) the same way,
            // the upper lanes adding -0.0, which leaves every value (and zero sign) as is.
            let mut tail = groups * 8;
            if nb - tail >= 4 {
                let b0 = tail;
                let blks = &row[b0 * bb..(b0 + 4) * bb];
                let mut u = [_mm256_setzero_si256(); 4];
                let mut s = [_mm256_setzero_si256(); 4];
                for i in 0..4 {
                    (u[i], s[i]) = unpack::<F>(&blks[i * bb..(i + 1) * bb]);
                }
                let dw = halves4(blks, bb, 0);
                let mw = if has_min(F) {
                    halves4(blks, bb, 2)
                } else {
                    _mm_setzero_ps()
                };
                for t in 0..T {
                    let y = &a[t].q[b0 * QK..(b0 + 4) * QK];
                    let mut v = [_mm256_setzero_si256(); 4];
                    for i in 0..4 {
                        let yi = load_i8x32(&y[i * QK..(i + 1) * QK]);
                        v[i] = $dot(u[i], signed::<F>(yi, s[i]));
                    }
                    let val = block_values4::<F>(reduce4(&v), dw, mw, a[t], b0);
                    acc[t] = _mm256_add_ps(acc[t], _mm256_set_m128(_mm_set1_ps(-0.0), val));
                }
                tail += 4;
            }
            let mut out = [0.0f32; T];
            for t in 0..T {
                let mut lanes = [0.0f32; 8];
                // SAFETY: `lanes` has room for eight f32 values.
                unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc[t]) };
                for b in tail..nb {
                    let blk = &row[b * bb..(b + 1) * bb];
                    let (u, s) = unpack::<F>(blk);
                    let yi = load_i8x32(&a[t].q[b * QK..(b + 1) * QK]);
                    let isum = hsum_i32($dot(u, signed::<F>(yi, s))) - offset32(F) * a[t].qsum[b];
                    lanes[b % 8] += block_value::<F>(blk, a[t], b, isum);
                }
                out[t] = sum8(lanes);
            }
            out
        }
    };
}

dot32_kernel!(dot32_avx2_n, "avx2,f16c", dot_bytes_avx2, dot32_x8_avx2);
dot32_kernel!(
    dot32_vnni_n,
    "avx2,f16c,avx512vnni,avx512vl",
    dot_bytes_vnni,
    dot32_x8_vnni
);

/// Eight binary16 values from `h[..8]` as f32 (exact).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn halves_f32x8(h: &[u16]) -> __m256 {
    let h = &h[..8];
    // SAFETY: `h` has exactly 8 readable `u16` (16 bytes); the load is unaligned-tolerant.
    _mm256_cvtph_ps(unsafe { _mm_loadu_si128(h.as_ptr().cast()) })
}

/// The attention's query-key product with F16C: lane `j` accumulates `q[i] * k[i]` for
/// `i % 8 == j` (separate multiply and add), the lanes are summed by [`sum8`] and the
/// tail added in order: exactly the portable `forward` arithmetic.
#[target_feature(enable = "avx2,f16c")]
pub fn dot_f16_keys(q: &[f32], k: &[u16]) -> f32 {
    let n = q.len().min(k.len());
    let n8 = n / 8 * 8;
    let mut acc = _mm256_setzero_ps();
    for i in (0..n8).step_by(8) {
        acc = _mm256_add_ps(
            acc,
            _mm256_mul_ps(load_f32x8(&q[i..i + 8]), halves_f32x8(&k[i..i + 8])),
        );
    }
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` has room for eight f32 values.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
    let mut tail = 0.0f32;
    for i in n8..n {
        tail += q[i] * crate::half::f16_to_f32(k[i]);
    }
    sum8(lanes) + tail
}

/// Values held in registers by [`weighted_rows_f16`].
const WEIGHTED_WIDTH: usize = 64;

/// `acc[j] += p * v[j]` for each `(p, v) = row(i)`, `i` in `0..len` in order (F16C;
/// separate multiply and add per value, as the portable attention does); a 64-wide
/// `acc` stays in eight registers over all rows.
#[target_feature(enable = "avx2,f16c")]
pub fn weighted_rows_f16<'v>(acc: &mut [f32], len: usize, row: impl Fn(usize) -> (f32, &'v [u16])) {
    if acc.len() != WEIGHTED_WIDTH {
        for i in 0..len {
            let (p, v) = row(i);
            axpy_f16(acc, p, v);
        }
        return;
    }
    let mut r: [__m256; 8] = core::array::from_fn(|k| load_f32x8(&acc[8 * k..8 * k + 8]));
    for i in 0..len {
        let (p, v) = row(i);
        let v = &v[..WEIGHTED_WIDTH];
        let pv = _mm256_set1_ps(p);
        for k in 0..8 {
            let x = halves_f32x8(&v[8 * k..8 * k + 8]);
            r[k] = _mm256_add_ps(r[k], _mm256_mul_ps(pv, x));
        }
    }
    for (k, rk) in r.iter().enumerate() {
        let o = &mut acc[8 * k..8 * k + 8];
        // SAFETY: `o` has exactly 8 writable `f32`.
        unsafe { _mm256_storeu_ps(o.as_mut_ptr(), *rk) };
    }
}

/// `acc[i] += p * v[i]` with `v` binary16 (F16C; separate multiply and add, as the
/// portable attention does).
#[target_feature(enable = "avx2,f16c")]
pub fn axpy_f16(acc: &mut [f32], p: f32, v: &[u16]) {
    let n = acc.len().min(v.len());
    let n8 = n / 8 * 8;
    let pv = _mm256_set1_ps(p);
    for i in (0..n8).step_by(8) {
        let a = &mut acc[i..i + 8];
        let r = _mm256_add_ps(load_f32x8(a), _mm256_mul_ps(pv, halves_f32x8(&v[i..i + 8])));
        // SAFETY: `a` has exactly 8 writable `f32`.
        unsafe { _mm256_storeu_ps(a.as_mut_ptr(), r) };
    }
    for i in n8..n {
        acc[i] += p * crate::half::f16_to_f32(v[i]);
    }
}

/// Eight `f32` as binary16 bits with `vcvtps2ph` (round to nearest even), or `None` if
/// one of them is NaN: for every other value the instruction computes exactly
/// [`crate::half::f32_to_f16`] (IEEE conversion; a test checks it), while NaN payloads
/// would differ, so callers convert those lanes with the portable function.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn halves_of8(x: __m256) -> Option<__m128i> {
    if _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_UNORD_Q>(x, x)) != 0 {
        return None;
    }
    Some(_mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x))
}

/// `dst[i] = f32_to_f16(src[i])` (the same bits, see [`halves_of8`]).
#[target_feature(enable = "avx2,f16c")]
pub fn f32_to_f16_slice(src: &[f32], dst: &mut [u16]) {
    let n = src.len().min(dst.len());
    let mut i = 0;
    while i + 8 <= n {
        match halves_of8(load_f32x8(&src[i..i + 8])) {
            Some(h) => {
                let d = &mut dst[i..i + 8];
                // SAFETY: `d` has exactly 8 writable `u16` (16 bytes).
                unsafe { _mm_storeu_si128(d.as_mut_ptr().cast(), h) };
            }
            None => {
                for j in i..i + 8 {
                    dst[j] = crate::half::f32_to_f16(src[j]);
                }
            }
        }
        i += 8;
    }
    for j in i..n {
        dst[j] = crate::half::f32_to_f16(src[j]);
    }
}

/// `x[i] = round_f16(x[i])` (the same bits: exact conversions back, see [`halves_of8`]).
#[target_feature(enable = "avx2,f16c")]
pub fn round_f16_slice(x: &mut [f32]) {
    let n8 = x.len() / 8 * 8;
    for c in x[..n8].chunks_exact_mut(8) {
        match halves_of8(load_f32x8(c)) {
            // SAFETY: `c` has exactly 8 writable `f32`.
            Some(h) => unsafe { _mm256_storeu_ps(c.as_mut_ptr(), _mm256_cvtph_ps(h)) },
            None => c.iter_mut().for_each(|v| *v = crate::half::round_f16(*v)),
        }
    }
    for v in &mut x[n8..] {
        *v = crate::half::round_f16(*v);
    }
}

/// The GeGLU product `a[i] = gelu(a[i]) * b[i]` of `forward` (`table` indexed by the
/// input's binary16 bits within +-10, zero below, identity above), eight at a time: the
/// same selections and multiply per value, the f16 bits from [`halves_of8`].
#[target_feature(enable = "avx2,f16c")]
pub fn geglu(a: &mut [f32], b: &[f32], table: &[f32], scalar: impl Fn(f32) -> f32) {
    assert!(table.len() == 65536, "GELU table of every binary16");
    let n = a.len().min(b.len());
    let n8 = n / 8 * 8;
    let (lo, hi) = (_mm256_set1_ps(-10.0), _mm256_set1_ps(10.0));
    for i in (0..n8).step_by(8) {
        let x = load_f32x8(&a[i..i + 8]);
        let g = match halves_of8(x) {
            Some(h) => {
                // SAFETY: every index is a 16-bit value and `table` has 65536 entries.
                let looked =
                    unsafe { _mm256_i32gather_ps::<4>(table.as_ptr(), _mm256_cvtepu16_epi32(h)) };
                let below = _mm256_cmp_ps::<_CMP_LE_OQ>(x, lo);
                let above = _mm256_cmp_ps::<_CMP_GE_OQ>(x, hi);
                let g = _mm256_blendv_ps(looked, x, above);
                _mm256_andnot_ps(below, g)
            }
            None => {
                let mut g = [0.0f32; 8];
                for (j, v) in g.iter_mut().enumerate() {
                    *v = scalar(a[i + j]);
                }
                load_f32x8(&g)
            }
        };
        let r = _mm256_mul_ps(g, load_f32x8(&b[i..i + 8]));
        let o = &mut a[i..i + 8];
        // SAFETY: `o` has exactly 8 writable `f32`.
        unsafe { _mm256_storeu_ps(o.as_mut_ptr(), r) };
    }
    for i in n8..n {
        a[i] = scalar(a[i]) * b[i];
    }
}

/// Whether this CPU runs [`dot32_avx2_n`] (AVX2 and F16C).
pub fn has_avx2() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("f16c")
}

/// Whether this CPU runs [`dot32_vnni_n`] (also AVX-512 VNNI and VL).
pub fn has_vnni() -> bool {
    has_avx2()
        && std::is_x86_feature_detected!("avx512vnni")
        && std::is_x86_feature_detected!("avx512vl")
}

/// The AVX-512 VNNI kernels under the names [`crate::matrix`] dispatches on (the K
/// formats use the AVX2 ones).
pub mod vnni {
    use super::*;

    /// [`super::dot_q4_k_n`] with `vpdpwssd` for eight inputs (the same bits).
    #[target_feature(enable = "avx2,f16c,avx512vnni,avx512vl")]
    pub fn dot_q4_k_n<const T: usize>(row: &[u8], a: [&Q8KActs; T]) -> [f32; T] {
        if T.is_multiple_of(TOKENS8) {
            return in_eights(a, |a8| {
                dot_k4_x8_vnni(Format::Q4_K, row, a8, |blk, j| unpack_q4_k(blk, j))
            });
        }
        super::dot_q4_k_n(row, a)
    }

    /// [`super::dot_q5_k_n`] with `vpdpwssd` for eight inputs (the same bits).
    #[target_feature(enable = "avx2,f16c,avx512vnni,avx512vl")]
    pub fn dot_q5_k_n<const T: usize>(row: &[u8], a: [&Q8KActs; T]) -> [f32; T] {
        if T.is_multiple_of(TOKENS8) {
            return in_eights(a, |a8| {
                dot_k4_x8_vnni(Format::Q5_K, row, a8, |blk, j| unpack_q5_k(blk, j))
            });
        }
        super::dot_q5_k_n(row, a)
    }

    /// [`super::dot_q6_k_n`] with `vpdpwssd` for eight inputs (the same bits).
    #[target_feature(enable = "avx2,f16c,avx512vnni,avx512vl")]
    pub fn dot_q6_k_n<const T: usize>(row: &[u8], a: [&Q8KActs; T]) -> [f32; T] {
        if T.is_multiple_of(TOKENS8) {
            return in_eights(a, |a8| dot_q6_k_x8_vnni(row, a8));
        }
        super::dot_q6_k_n(row, a)
    }

    crate::quant::named_dot32!(dot32_vnni_n, #[target_feature(enable = "avx2,f16c,avx512vnni,avx512vl")]);
}

crate::quant::named_dot32!(dot32_avx2_n, #[target_feature(enable = "avx2,f16c")]);

/// 32 unsigned bytes.
pub type B = __m256i;

/// Loads 32 bytes from `b[..32]`.
#[inline(always)]
fn load32(b: &[u8]) -> __m256i {
    let b = &b[..32];
    // SAFETY: `b` has exactly 32 readable bytes; the load is unaligned-tolerant.
    unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
}

/// Low nibbles of `b[..16]`, then their high nibbles.
#[inline]
#[target_feature(enable = "avx2")]
pub fn nib16(b: &[u8]) -> B {
    let q = load16(b);
    let m = _mm_set1_epi8(0x0f);
    _mm256_set_m128i(
        _mm_and_si128(_mm_srli_epi16::<4>(q), m),
        _mm_and_si128(q, m),
    )
}

/// Low nibbles of `b[..32]`.
#[inline]
#[target_feature(enable = "avx2")]
pub fn nib_lo(b: &[u8]) -> B {
    _mm256_and_si256(load32(b), _mm256_set1_epi8(0x0f))
}

/// High nibbles of `b[..32]`.
#[inline]
#[target_feature(enable = "avx2")]
pub fn nib_hi(b: &[u8]) -> B {
    _mm256_and_si256(_mm256_srli_epi16::<4>(load32(b)), _mm256_set1_epi8(0x0f))
}

/// 16 where bit `i` of `h` is set: byte `i` takes byte `i / 8` of `h`, ORed with a mask
/// of every bit but `i % 8`, is all ones exactly when that bit is set.
#[inline]
#[target_feature(enable = "avx2")]
pub fn bits32(h: u32) -> B {
    let shuf = _mm256_set_epi64x(
        0x0303_0303_0303_0303,
        0x0202_0202_0202_0202,
        0x0101_0101_0101_0101,
        0,
    );
    let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(h as i32), shuf);
    let all_but = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe);
    let set = _mm256_cmpeq_epi8(_mm256_or_si256(bytes, all_but), _mm256_set1_epi8(-1));
    _mm256_and_si256(set, _mm256_set1_epi8(16))
}

/// 16 where bit `n` of `b[i]` is set.
#[inline]
#[target_feature(enable = "avx2")]
pub fn bit_of(b: &[u8], n: u32) -> B {
    let m = _mm256_set1_epi8((1u8 << (n & 7)) as i8);
    let set = _mm256_cmpeq_epi8(_mm256_and_si256(load32(b), m), m);
    _mm256_and_si256(set, _mm256_set1_epi8(16))
}

/// `((b[i] >> n) & 3) << 4`.
#[inline]
#[target_feature(enable = "avx2")]
pub fn two_bits_of(b: &[u8], n: u32) -> B {
    let v = _mm256_srl_epi16(load32(b), _mm_cvtsi32_si128((n & 7) as i32));
    _mm256_slli_epi16::<4>(_mm256_and_si256(v, _mm256_set1_epi8(3)))
}

/// Bitwise or.
#[inline]
#[target_feature(enable = "avx2")]
pub fn or(a: B, b: B) -> B {
    _mm256_or_si256(a, b)
}

/// Sum of the eight `i32` lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn hsum_i32(v: __m256i) -> i32 {
    let x = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let x = _mm_add_epi32(x, _mm_shuffle_epi32::<0x4e>(x));
    let x = _mm_add_epi32(x, _mm_shuffle_epi32::<0xb1>(x));
    _mm_cvtsi128_si32(x)
}

/// `sc * (u * y)` summed in pairs into eight `i32` lanes: `maddubs` forms the products
/// of the unsigned weight bytes `u` (at most 63) and the signed activation bytes `y[..32]`
/// in `i16` pairs (at most 2 * 63 * 127, no saturation), `madd` multiplies each pair by
/// its sub-block scale (the `i16` lanes of `sc`) and adds neighbours (exact in `i32`).
#[inline]
#[target_feature(enable = "avx2")]
fn scaled_dot(u: __m256i, y: &[i8], sc: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(u, load_i8x32(y)), sc)
}

/// The Q4_K/Q5_K kernel: `unpack(blk, j)` gives the 32 unsigned values of sub-block `j`.
/// Per block and input, `isum = sum(sc[j] * sum(q * y))` (exactly [`weighted`] of the
/// portable kernel, formed with byte products) and the portable float formula.
#[inline]
#[target_feature(enable = "avx2")]
fn dot_k4<const T: usize>(
    format: Format,
    row: &[u8],
    a: [&Q8KActs; T],
    unpack: impl Fn(&[u8], usize) -> __m256i,
) -> [f32; T] {
    let mut acc = [Acc::default(); T];
    for (b, blk) in row.chunks_exact(format.block_bytes()).enumerate() {
        let d = f16_at(blk, 0);
        let dmin = f16_at(blk, 2);
        let (sc, mn) = k_scales(&blk[4..16]);
        let mut w = [_mm256_setzero_si256(); 8];
        let mut scv = [_mm256_setzero_si256(); 8];
        for j in 0..8 {
            w[j] = unpack(blk, j);
            scv[j] = _mm256_set1_epi16(sc[j] as i16);
        }
        for t in 0..T {
            let y = &a[t].q8[b * QK_K..(b + 1) * QK_K];
            let mut v = _mm256_setzero_si256();
            for j in 0..8 {
                v = _mm256_add_epi32(v, scaled_dot(w[j], &y[32 * j..32 * j + 32], scv[j]));
            }
            let isum = hsum_i32(v);
            let msum = min_term(&mn, &a[t].bsums[16 * b..16 * b + 16]);
            let yd = a[t].d[b];
            acc[t].add(b, (d * yd) * isum as f32 - (dmin * yd) * msum as f32);
        }
    }
    core::array::from_fn(|t| acc[t].sum())
}

/// Inputs the cross-input K kernels (`dot_k4_x8_*`, `dot_q6_k_x8_*`) take at once.
const TOKENS8: usize = 8;

/// `T` (a multiple of eight) inputs as `kernel` of each eight in turn.
#[inline(always)]
fn in_eights<const T: usize>(
    a: [&Q8KActs; T],
    mut kernel: impl FnMut([&Q8KActs; TOKENS8]) -> [f32; TOKENS8],
) -> [f32; T] {
    let mut out = [0.0f32; T];
    for (o, a) in out.chunks_exact_mut(TOKENS8).zip(a.chunks_exact(TOKENS8)) {
        o.copy_from_slice(&kernel(core::array::from_fn(|t| a[t])));
    }
    out
}

/// Lane `t` = `a[t].d[b]`: the activation scales of block `b` of eight inputs.
#[inline]
#[target_feature(enable = "avx2")]
fn act_scales8(a: &[&Q8KActs; TOKENS8], b: usize) -> __m256 {
    _mm256_set_ps(
        a[7].d[b], a[6].d[b], a[5].d[b], a[4].d[b], a[3].d[b], a[2].d[b], a[1].d[b], a[0].d[b],
    )
}

/// Loads the sixteen `i16` sub-block sums of block `b` of `a`.
#[inline(always)]
fn load_bsums(a: &Q8KActs, b: usize) -> __m256i {
    let s = &a.bsums[16 * b..16 * b + 16];
    // SAFETY: `s` has exactly 16 readable `i16` (32 bytes); the load is unaligned-tolerant.
    unsafe { _mm256_loadu_si256(s.as_ptr().cast()) }
}

/// The binary16 values at `blk[at..at + 2]` and `blk[at + 2..at + 4]`, each broadcast
/// to eight `f32` lanes (`vcvtph2ps` converts exactly, as [`f16_at`] does).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn half_pair(blk: &[u8], at: usize) -> (__m256, __m256) {
    let h = _mm_cvtph_ps(_mm_cvtsi32_si128(u32_at(blk, at) as i32));
    (
        _mm256_broadcastss_ps(h),
        _mm256_broadcastss_ps(_mm_movehdup_ps(h)),
    )
}

/// The binary16 value at `blk[at..at + 2]` broadcast to eight `f32` lanes (exact).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn half_at(blk: &[u8], at: usize) -> __m256 {
    let h = u16::from_le_bytes([blk[at], blk[at + 1]]);
    _mm256_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(h as i32)))
}

/// Lane `t` of the four accumulators summed as [`Acc::sum`] does, stored as an array.
#[inline]
#[target_feature(enable = "avx2")]
fn acc_sum8(acc: [__m256; 4]) -> [f32; TOKENS8] {
    let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut out = [0.0f32; TOKENS8];
    // SAFETY: `out` has room for eight f32 values.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
    out
}

/// `acc + sc * (u * y)` in eight `i32` lanes with AVX2 (see [`scaled_dot`]).
#[inline]
#[target_feature(enable = "avx2")]
fn scaled_dot_acc_avx2(acc: __m256i, u: __m256i, y: &[i8], sc: __m256i) -> __m256i {
    _mm256_add_epi32(acc, scaled_dot(u, y, sc))
}

/// `acc + sc * (u * y)` with the pair products' `madd` and the add fused into one
/// AVX-512 VNNI `vpdpwssd` (the same exact `i32` sums).
#[inline]
#[target_feature(enable = "avx2,avx512vnni,avx512vl")]
fn scaled_dot_acc_vnni(acc: __m256i, u: __m256i, y: &[i8], sc: __m256i) -> __m256i {
    _mm256_dpwssd_epi32(acc, _mm256_maddubs_epi16(u, load_i8x32(y)), sc)
}

/// Generates the eight-input K kernels `$k4` (Q4_K / Q5_K, with the sub-block unpacker
/// as argument) and `$q6` (Q6_K) for `$features`, with `$sdot` (`acc + sc * (u * y)`).
///
/// The inputs sit in the vector lanes: per block, each input's integer sums are formed
/// in eight `i32` lanes (the Q4_K/Q5_K `min_term` by `madd` of the sub-block sums with
/// the minimums; the Q6_K offset `32 * sum(sc[j] * bsums[j])` subtracted lane-wise), the
/// eight inputs' vectors are reduced together by [`reduce8`] (lane `t` = input `t`, all
/// exact in `i32`), and lane `t` then computes input `t`'s float formula and its [`Acc`]
/// (accumulator `b % 4`, summed `(a0 + a1) + (a2 + a3)`): every lane does the portable
/// kernel's float operations, in its order.
macro_rules! k_kernels_x8 {
    ($k4:ident, $q6:ident, $features:literal, $sdot:ident) => {
        /// Q4_K / Q5_K row (sub-block `j` of a block from `unpack`) against 8 inputs.
        #[inline]
        #[target_feature(enable = $features)]
        fn $k4(
            format: Format,
            row: &[u8],
            a: [&Q8KActs; TOKENS8],
            unpack: impl Fn(&[u8], usize) -> __m256i,
        ) -> [f32; TOKENS8] {
            let mut acc = [_mm256_setzero_ps(); 4];
            for (b, blk) in row.chunks_exact(format.block_bytes()).enumerate() {
                let (sc, mn) = k_scales(&blk[4..16]);
                let mut w = [_mm256_setzero_si256(); 8];
                let mut scv = [_mm256_setzero_si256(); 8];
                for j in 0..8 {
                    w[j] = unpack(blk, j);
                    scv[j] = _mm256_set1_epi16(sc[j] as i16);
                }
                // i16 lanes 2j and 2j + 1: mn[j], the multiplier of bsums[2j], [2j + 1].
                let m = mn.map(|v| v as i16);
                let mnv = _mm256_set_epi16(
                    m[7], m[7], m[6], m[6], m[5], m[5], m[4], m[4], m[3], m[3], m[2], m[2], m[1],
                    m[1], m[0], m[0],
                );
                let mut vi = [_mm256_setzero_si256(); TOKENS8];
                let mut vm = [_mm256_setzero_si256(); TOKENS8];
                for t in 0..TOKENS8 {
                    let y = &a[t].q8[b * QK_K..(b + 1) * QK_K];
                    let mut v = _mm256_setzero_si256();
                    for j in 0..8 {
                        v = $sdot(v, w[j], &y[32 * j..32 * j + 32], scv[j]);
                    }
                    vi[t] = v;
                    vm[t] = _mm256_madd_epi16(load_bsums(a[t], b), mnv);
                }
                let isum = _mm256_cvtepi32_ps(reduce8(&vi));
                let msum = _mm256_cvtepi32_ps(reduce8(&vm));
                let yd = act_scales8(&a, b);
                let (d, dmin) = half_pair(blk, 0);
                let val = _mm256_sub_ps(
                    _mm256_mul_ps(_mm256_mul_ps(d, yd), isum),
                    _mm256_mul_ps(_mm256_mul_ps(dmin, yd), msum),
                );
                acc[b & 3] = _mm256_add_ps(acc[b & 3], val);
            }
            acc_sum8(acc)
        }

        /// Q6_K row against 8 inputs.
        #[inline]
        #[target_feature(enable = $features)]
        fn $q6(row: &[u8], a: [&Q8KActs; TOKENS8]) -> [f32; TOKENS8] {
            let mut acc = [_mm256_setzero_ps(); 4];
            for (b, blk) in row.chunks_exact(Format::Q6_K.block_bytes()).enumerate() {
                let sc16 = _mm256_cvtepi8_epi16(load16(&blk[192..208]));
                let mut w = [_mm256_setzero_si256(); 8];
                let mut scv = [_mm256_setzero_si256(); 8];
                for k in 0..8 {
                    let (lo, nib_shift, hi, h_shift) = crate::blocks::q6k_chunk(k);
                    let q = if nib_shift == 0 {
                        nib_lo(&blk[lo..lo + 32])
                    } else {
                        nib_hi(&blk[lo..lo + 32])
                    };
                    w[k] = or(q, two_bits_of(&blk[hi..hi + 32], h_shift));
                    scv[k] = _mm256_set_m128i(
                        _mm_set1_epi16(blk[192 + 2 * k + 1] as i8 as i16),
                        _mm_set1_epi16(blk[192 + 2 * k] as i8 as i16),
                    );
                }
                let mut vi = [_mm256_setzero_si256(); TOKENS8];
                for t in 0..TOKENS8 {
                    let y = &a[t].q8[b * QK_K..(b + 1) * QK_K];
                    let off = _mm256_madd_epi16(load_bsums(a[t], b), sc16);
                    let mut v =
                        _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32::<5>(off));
                    for k in 0..8 {
                        v = $sdot(v, w[k], &y[32 * k..32 * k + 32], scv[k]);
                    }
                    vi[t] = v;
                }
                let isum = _mm256_cvtepi32_ps(reduce8(&vi));
                let d = half_at(blk, 208);
                let val = _mm256_mul_ps(_mm256_mul_ps(d, act_scales8(&a, b)), isum);
                acc[b & 3] = _mm256_add_ps(acc[b & 3], val);
            }
            acc_sum8(acc)
        }
    };
}

k_kernels_x8!(
    dot_k4_x8_avx2,
    dot_q6_k_x8_avx2,
    "avx2,f16c",
    scaled_dot_acc_avx2
);
k_kernels_x8!(
    dot_k4_x8_vnni,
    dot_q6_k_x8_vnni,
    "avx2,f16c,avx512vnni,avx512vl",
    scaled_dot_acc_vnni
);

/// The 32 unsigned values of sub-block `j` of a Q4_K block.
#[inline]
#[target_feature(enable = "avx2")]
fn unpack_q4_k(blk: &[u8], j: usize) -> __m256i {
    let qs = &blk[16 + 32 * (j / 2)..16 + 32 * (j / 2) + 32];
    if j.is_multiple_of(2) {
        nib_lo(qs)
    } else {
        nib_hi(qs)
    }
}

/// The 32 unsigned values of sub-block `j` of a Q5_K block.
#[inline]
#[target_feature(enable = "avx2")]
fn unpack_q5_k(blk: &[u8], j: usize) -> __m256i {
    let qs = &blk[48 + 32 * (j / 2)..48 + 32 * (j / 2) + 32];
    let lo = if j.is_multiple_of(2) {
        nib_lo(qs)
    } else {
        nib_hi(qs)
    };
    or(lo, bit_of(&blk[16..48], j as u32))
}

/// Dot products of a Q4_K row with `T` Q8_K activation vectors (the same bits as
/// [`crate::kernels::portable::dot_q4_k_n`]).
#[target_feature(enable = "avx2,f16c")]
pub fn dot_q4_k_n<const T: usize>(row: &[u8], a: [&Q8KActs; T]) -> [f32; T] {
    if T.is_multiple_of(TOKENS8) {
        return in_eights(a, |a8| {
            dot_k4_x8_avx2(Format::Q4_K, row, a8, |blk, j| unpack_q4_k(blk, j))
        });
    }
    dot_k4(Format::Q4_K, row, a, |blk, j| unpack_q4_k(blk, j))
}

/// Dot products of a Q5_K row with `T` Q8_K activation vectors (the same bits as
/// [`crate::kernels::portable::dot_q5_k_n`]).
#[target_feature(enable = "avx2,f16c")]
pub fn dot_q5_k_n<const T: usize>(row: &[u8], a: [&Q8KActs; T]) -> [f32; T] {
    if T.is_multiple_of(TOKENS8) {
        return in_eights(a, |a8| {
            dot_k4_x8_avx2(Format::Q5_K, row, a8, |blk, j| unpack_q5_k(blk, j))
        });
    }
    dot_k4(Format::Q5_K, row, a, |blk, j| unpack_q5_k(blk, j))
}

/// Dot products of a Q6_K row with `T` Q8_K activation vectors (the same bits as
/// [`crate::kernels::portable::dot_q6_k_n`]): the stored values `u = q + 32` (0..64)
/// times the activations, weighted by the sixteen scales, minus
/// `32 * sum(sc[j] * bsums[j])`, which is exactly the portable `sum(sc[j] * s[j])`.
#[target_feature(enable = "avx2,f16c")]
pub fn dot_q6_k_n<const T: usize>(row: &[u8], a: [&Q8KActs; T]) -> [f32; T] {
    if T.is_multiple_of(TOKENS8) {
        return in_eights(a, |a8| dot_q6_k_x8_avx2(row, a8));
    }
    let mut acc = [Acc::default(); T];
    for (b, blk) in row.chunks_exact(Format::Q6_K.block_bytes()).enumerate() {
        let d = f16_at(blk, 208);
        let sc: [i32; 16] = core::array::from_fn(|j| blk[192 + j] as i8 as i32);
        let mut w = [_mm256_setzero_si256(); 8];
        let mut scv = [_mm256_setzero_si256(); 8];
        for k in 0..8 {
            let (lo, nib_shift, hi, h_shift) = crate::blocks::q6k_chunk(k);
            let q = if nib_shift == 0 {
                nib_lo(&blk[lo..lo + 32])
            } else {
                nib_hi(&blk[lo..lo + 32])
            };
            w[k] = or(q, two_bits_of(&blk[hi..hi + 32], h_shift));
            scv[k] = _mm256_set_m128i(
                _mm_set1_epi16(sc[2 * k + 1] as i16),
                _mm_set1_epi16(sc[2 * k] as i16),
            );
        }
        for t in 0..T {
            let y = &a[t].q8[b * QK_K..(b + 1) * QK_K];
            let mut v = _mm256_setzero_si256();
            for k in 0..8 {
                v = _mm256_add_epi32(v, scaled_dot(w[k], &y[32 * k..32 * k + 32], scv[k]));
            }
            let bs = &a[t].bsums[16 * b..16 * b + 16];
            let mut off = 0i32;
            for j in 0..16 {
                off += sc[j] * bs[j] as i32;
            }
            let isum = hsum_i32(v) - 32 * off;
            acc[t].add(b, (d * a[t].d[b]) * isum as f32);
        }
    }
    core::array::from_fn(|t| acc[t].sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every 32-value format, AVX2 and VNNI, one and eight inputs, against the portable
    /// kernel: random blocks (any bit pattern, Q8_0 weights down to -128), random
    /// activations, row lengths with and without a partial group of eight blocks (and of
    /// four, which has its own path), and
    /// the largest products (saturation would show here).
    #[test]
    fn dot32_kernels_match_portable_bit_for_bit() {
        use crate::blocks::Format;
        use crate::kernels::tests::{random_row, xorshift};
        if !has_avx2() {
            return;
        }
        let mut seed = 0x1234_5678u32;
        for round in 0..24 {
            let cols = QK * [8, 19, 3, 20, 1, 13, 48, 4][round % 8];
            let xs: std::vec::Vec<std::vec::Vec<f32>> = (0..16)
                .map(|_| {
                    (0..cols)
                        .map(|i| match round % 4 {
                            // All at +-full scale: every activation is +-127.
                            3 => {
                                if i % 3 == 0 {
                                    -1.0
                                } else {
                                    1.0
                                }
                            }
                            _ => (xorshift(&mut seed) % 4001) as f32 / 100.0 - 20.0,
                        })
                        .collect()
                })
                .collect();
            let acts: std::vec::Vec<Q8Acts> = xs.iter().map(|x| Q8Acts::quantize(x)).collect();
            let r8: [&Q8Acts; 8] = core::array::from_fn(|t| &acts[t]);
            let r16: [&Q8Acts; 16] = core::array::from_fn(|t| &acts[t]);
            for format in [
                Format::Q4_0,
                Format::Q4_1,
                Format::Q5_0,
                Format::Q5_1,
                Format::Q8_0,
            ] {
                let mut row = random_row(format, cols, &mut seed);
                if round % 4 == 3 {
                    // Largest weights: every quantized bit set (Q8_0: -1; then -128).
                    let hdr = if matches!(format, Format::Q4_1 | Format::Q5_1) {
                        4
                    } else {
                        2
                    };
                    let fill = if format == Format::Q8_0 { 0x80 } else { 0xff };
                    for blk in row.chunks_exact_mut(format.block_bytes()) {
                        blk[hdr..].fill(fill);
                    }
                }
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<std::vec::Vec<_>>();
                macro_rules! check {
                    ($f:ident) => {{
                        let port = crate::quant::$f(&row, r8);
                        // SAFETY: AVX2 and F16C support was checked above.
                        let (simd, simd1) = unsafe { ($f(&row, r8), $f(&row, [r8[5]])) };
                        assert_eq!(bits(&simd), bits(&port), "{format:?} avx2 round {round}");
                        assert_eq!(
                            simd1[0].to_bits(),
                            port[5].to_bits(),
                            "{format:?} avx2 single"
                        );
                        let port16 = crate::quant::$f(&row, r16);
                        // SAFETY: AVX2 and F16C support was checked above.
                        let simd16 = unsafe { $f(&row, r16) };
                        assert_eq!(bits(&simd16), bits(&port16), "{format:?} avx2 16 inputs");
                        if has_vnni() {
                            // SAFETY: AVX-512 VNNI and VL support was checked just above.
                            let v16 = unsafe { vnni::$f(&row, r16) };
                            assert_eq!(bits(&v16), bits(&port16), "{format:?} vnni 16 inputs");
                            // SAFETY: AVX-512 VNNI and VL support was checked just above.
                            let (v8, v1) = unsafe { (vnni::$f(&row, r8), vnni::$f(&row, [r8[5]])) };
                            assert_eq!(bits(&v8), bits(&port), "{format:?} vnni round {round}");
                            assert_eq!(
                                v1[0].to_bits(),
                                port[5].to_bits(),
                                "{format:?} vnni single"
                            );
                        }
                    }};
                }
                match format {
                    Format::Q4_0 => check!(dot_q4_0_n),
                    Format::Q4_1 => check!(dot_q4_1_n),
                    Format::Q5_0 => check!(dot_q5_0_n),
                    Format::Q5_1 => check!(dot_q5_1_n),
                    _ => check!(dot_q8_0_n),
                }
            }
        }
    }

    /// `vcvtps2ph` against the portable conversion over a spread of every exponent
    /// and sign (normal, subnormal, overflow, ties), NaN lanes included.
    #[test]
    fn f16_conversions_match_portable_bit_for_bit() {
        if !has_avx2() {
            return;
        }
        let mut xs: std::vec::Vec<f32> = (0..=u32::MAX / 251)
            .map(|i| f32::from_bits(i * 251))
            .collect();
        // Exact ties and neighbours around every binary16 value.
        for h in 0..=u16::MAX {
            let f = crate::half::f16_to_f32(h).to_bits();
            for d in [0x1000u32, 0x0fff, 0x1001, 0x2000] {
                xs.push(f32::from_bits(f.wrapping_add(d)));
                xs.push(f32::from_bits(f.wrapping_sub(d)));
            }
        }
        let mut got = std::vec![0u16; xs.len()];
        // SAFETY: AVX2 and F16C support was checked above.
        unsafe { f32_to_f16_slice(&xs, &mut got) };
        for (x, g) in xs.iter().zip(&got) {
            assert_eq!(*g, crate::half::f32_to_f16(*x), "{:#x}", x.to_bits());
        }
        let mut r = xs.clone();
        // SAFETY: as above.
        unsafe { round_f16_slice(&mut r) };
        for (x, g) in xs.iter().zip(&r) {
            assert_eq!(
                g.to_bits(),
                crate::half::round_f16(*x).to_bits(),
                "{:#x}",
                x.to_bits()
            );
        }
    }

    #[test]
    fn avx2_block_kernels_match_portable_bit_for_bit() {
        use crate::blocks::{Format, QK_K};
        use crate::kernels::portable as p;
        use crate::kernels::tests::{random_row, xorshift};
        use crate::quant::Q8KActs;
        if !has_avx2() {
            return;
        }
        let mut seed = 0xdead_beefu32;
        let cols = 3 * QK_K;
        for round in 0..12 {
            // Every third round at the extremes: activations all +-127, every weight bit
            // set, largest scales (Q6_K: -128), so saturation or overflow would show.
            let extreme = round % 3 == 2;
            let xs: std::vec::Vec<std::vec::Vec<f32>> = (0..16)
                .map(|_| {
                    (0..cols)
                        .map(|i| {
                            if extreme {
                                [1.0, -1.0, -1.0][i % 3]
                            } else {
                                (xorshift(&mut seed) % 4001) as f32 / 100.0 - 20.0
                            }
                        })
                        .collect()
                })
                .collect();
            let ak: std::vec::Vec<Q8KActs> = xs.iter().map(|x| Q8KActs::quantize(x)).collect();
            let rk: [&Q8KActs; 8] = core::array::from_fn(|t| &ak[t]);
            let r16: [&Q8KActs; 16] = core::array::from_fn(|t| &ak[t]);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<std::vec::Vec<_>>();
            for format in [Format::Q4_K, Format::Q5_K, Format::Q6_K] {
                let mut row = random_row(format, cols, &mut seed);
                if extreme {
                    for blk in row.chunks_exact_mut(format.block_bytes()) {
                        if format == Format::Q6_K {
                            blk[..192].fill(0xff);
                            blk[192..208].fill(0x80);
                        } else {
                            blk[4..].fill(0xff);
                        }
                    }
                }
                // SAFETY: AVX2 and F16C support was checked above.
                let (simd, simd1, port) = unsafe {
                    match format {
                        Format::Q4_K => (
                            dot_q4_k_n(&row, rk),
                            dot_q4_k_n(&row, [rk[3]]),
                            p::dot_q4_k_n(&row, rk),
                        ),
                        Format::Q5_K => (
                            dot_q5_k_n(&row, rk),
                            dot_q5_k_n(&row, [rk[3]]),
                            p::dot_q5_k_n(&row, rk),
                        ),
                        _ => (
                            dot_q6_k_n(&row, rk),
                            dot_q6_k_n(&row, [rk[3]]),
                            p::dot_q6_k_n(&row, rk),
                        ),
                    }
                };
                assert_eq!(bits(&simd), bits(&port), "{format:?} round {round}");
                assert_eq!(simd1[0].to_bits(), port[3].to_bits(), "{format:?} single");
                // SAFETY: AVX2 and F16C support was checked above.
                let (s16, p16) = unsafe {
                    match format {
                        Format::Q4_K => (dot_q4_k_n(&row, r16), p::dot_q4_k_n(&row, r16)),
                        Format::Q5_K => (dot_q5_k_n(&row, r16), p::dot_q5_k_n(&row, r16)),
                        _ => (dot_q6_k_n(&row, r16), p::dot_q6_k_n(&row, r16)),
                    }
                };
                assert_eq!(bits(&s16), bits(&p16), "{format:?} 16 inputs");
                if has_vnni() {
                    // SAFETY: AVX-512 VNNI and VL support was checked just above.
                    let v16 = unsafe {
                        match format {
                            Format::Q4_K => vnni::dot_q4_k_n(&row, r16),
                            Format::Q5_K => vnni::dot_q5_k_n(&row, r16),
                            _ => vnni::dot_q6_k_n(&row, r16),
                        }
                    };
                    assert_eq!(bits(&v16), bits(&p16), "{format:?} vnni 16 inputs");
                }
                if has_vnni() {
                    // SAFETY: AVX-512 VNNI and VL support was checked just above.
                    let (v8, v1) = unsafe {
                        match format {
                            Format::Q4_K => {
                                (vnni::dot_q4_k_n(&row, rk), vnni::dot_q4_k_n(&row, [rk[3]]))
                            }
                            Format::Q5_K => {
                                (vnni::dot_q5_k_n(&row, rk), vnni::dot_q5_k_n(&row, [rk[3]]))
                            }
                            _ => (vnni::dot_q6_k_n(&row, rk), vnni::dot_q6_k_n(&row, [rk[3]])),
                        }
                    };
                    assert_eq!(bits(&v8), bits(&port), "{format:?} vnni round {round}");
                    assert_eq!(v1[0].to_bits(), port[3].to_bits(), "{format:?} vnni single");
                }
            }
        }
    }
}
