//! ggml's quantized block formats: geometry, the integer values a block holds, and
//! dequantization (the token embedding is read one row at a time as f32).
//!
//! Layouts (little-endian, as `ggml-common.h` defines them; `d`, `m`, `dmin` binary16):
//!
//! | type | values | bytes | layout | value `k` |
//! | --- | --- | --- | --- | --- |
//! | Q4_0 | 32 | 18 | `d, qs[16]` | `d * (nib(k) - 8)` |
//! | Q4_1 | 32 | 20 | `d, m, qs[16]` | `d * nib(k) + m` |
//! | Q5_0 | 32 | 22 | `d, qh[4], qs[16]` | `d * (nib(k) + 16 * bit(qh, k) - 16)` |
//! | Q5_1 | 32 | 24 | `d, m, qh[4], qs[16]` | `d * (nib(k) + 16 * bit(qh, k)) + m` |
//! | Q8_0 | 32 | 34 | `d, qs[32]` (i8) | `d * qs[k]` |
//! | Q4_K | 256 | 144 | `d, dmin, scales[12], qs[128]` | `d * sc[j] * q - dmin * mn[j]`, sub-block `j = k / 32` |
//! | Q5_K | 256 | 176 | `d, dmin, scales[12], qh[32], qs[128]` | as Q4_K with a fifth bit from `qh` |
//! | Q6_K | 256 | 210 | `ql[128], qh[64], scales[16] (i8), d` | `d * scales[k / 16] * (q - 32)` |
//!
//! In the 32-value types `nib(k)` is the low nibble of `qs[k]` for `k < 16` and the high
//! nibble of `qs[k - 16]` above. In Q4_K/Q5_K the 256 values are four chunks of 64:
//! chunk `c` uses bytes `qs[32c..32c + 32]`, low nibbles first (sub-block `2c`), then
//! high nibbles (sub-block `2c + 1`); Q5_K's fifth bit of value `l` of sub-block `j`
//! is bit `j` of `qh[l]`. The twelve scale bytes pack eight 6-bit scales and eight 6-bit
//! minimums ([`k_scales`]). Q6_K: see [`q6k_chunk`].

use crate::half::f16_to_f32;

/// Values per block of the 32-value formats.
pub const QK: usize = 32;
/// Values per super-block of the K formats.
pub const QK_K: usize = 256;

/// A quantized weight format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum Format {
    /// 4-bit, scale.
    Q4_0,
    /// 4-bit, scale and minimum.
    Q4_1,
    /// 5-bit, scale.
    Q5_0,
    /// 5-bit, scale and minimum.
    Q5_1,
    /// 8-bit, scale.
    Q8_0,
    /// 4-bit K-quant (super-blocks of 256 with 6-bit sub-block scales and minimums).
    Q4_K,
    /// 5-bit K-quant.
    Q5_K,
    /// 6-bit K-quant (16 sub-blocks of 16 with 8-bit scales).
    Q6_K,
}

impl Format {
    /// The format of a ggml type id, if it is one of these.
    pub const fn from_ggml(ty: u32) -> Option<Self> {
        Some(match ty {
            2 => Format::Q4_0,
            3 => Format::Q4_1,
            6 => Format::Q5_0,
            7 => Format::Q5_1,
            8 => Format::Q8_0,
            12 => Format::Q4_K,
            13 => Format::Q5_K,
            14 => Format::Q6_K,
            _ => return None,
        })
    }

    /// Values per block.
    pub const fn block_values(self) -> usize {
        match self {
            Format::Q4_K | Format::Q5_K | Format::Q6_K => QK_K,
            _ => QK,
        }
    }

    /// Bytes per block.
    pub const fn block_bytes(self) -> usize {
        match self {
            Format::Q4_0 => 18,
            Format::Q4_1 => 20,
            Format::Q5_0 => 22,
            Format::Q5_1 => 24,
            Format::Q8_0 => 34,
            Format::Q4_K => 144,
            Format::Q5_K => 176,
            Format::Q6_K => 210,
        }
    }

    /// Bytes of `n` values, or `None` if `n` is not a whole number of blocks (or overflows).
    pub fn bytes_for(self, n: u64) -> Option<u64> {
        let bv = self.block_values() as u64;
        if !n.is_multiple_of(bv) {
            return None;
        }
        (n / bv).checked_mul(self.block_bytes() as u64)
    }

    /// Whether activations are quantized to Q8_K (256-value blocks) for this format.
    pub const fn uses_q8k(self) -> bool {
        matches!(self, Format::Q4_K | Format::Q5_K | Format::Q6_K)
    }
}

/// The binary16 value at `b[at..at + 2]`.
#[inline(always)]
pub fn f16_at(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// The eight 6-bit scales and eight 6-bit minimums packed in a Q4_K/Q5_K block's twelve
/// scale bytes (ggml's `get_scale_min_k4`).
#[inline(always)]
pub fn k_scales(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let s = &s[..12];
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    for j in 0..4 {
        sc[j] = s[j] & 63;
        mn[j] = s[j + 4] & 63;
        sc[j + 4] = (s[j + 8] & 0x0f) | ((s[j] >> 6) << 4);
        mn[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4);
    }
    (sc, mn)
}

/// Where the 32 values of chunk `k` (0..8) of a Q6_K block come from: low 4 bits from
/// `ql[lo..lo + 32]` (low nibbles if `nib_shift` is 0, high if 4), high 2 bits from
/// `(qh[hi..hi + 32] >> h_shift) & 3`. Chunk `k` holds sub-blocks `2k` and `2k + 1`.
#[inline(always)]
pub const fn q6k_chunk(k: usize) -> (usize, u32, usize, u32) {
    let half = k / 4;
    let part = k % 4;
    (
        64 * half + 32 * (part % 2),
        4 * (part / 2) as u32,
        128 + 32 * half,
        2 * part as u32,
    )
}

/// Dequantizes one row (`out.len()` values, a whole number of blocks) of `format`.
pub fn dequantize_row(format: Format, row: &[u8], out: &mut [f32]) {
    let bb = format.block_bytes();
    for (blk, o) in row
        .chunks_exact(bb)
        .zip(out.chunks_exact_mut(format.block_values()))
    {
        match format {
            Format::Q4_0 | Format::Q4_1 | Format::Q5_0 | Format::Q5_1 | Format::Q8_0 => {
                let v = values32(format, blk);
                let d = f16_at(blk, 0);
                let m = match format {
                    Format::Q4_1 | Format::Q5_1 => Some(f16_at(blk, 2)),
                    _ => None,
                };
                for (o, &q) in o.iter_mut().zip(&v) {
                    *o = match m {
                        Some(m) => q as f32 * d + m,
                        None => q as f32 * d,
                    };
                }
            }
            Format::Q4_K | Format::Q5_K => {
                let d = f16_at(blk, 0);
                let dmin = f16_at(blk, 2);
                let (sc, mn) = k_scales(&blk[4..16]);
                for j in 0..8 {
                    let (d1, m1) = (d * sc[j] as f32, dmin * mn[j] as f32);
                    let v = values_k(format, blk, j);
                    for (o, &q) in o[32 * j..32 * j + 32].iter_mut().zip(&v) {
                        *o = d1 * q as f32 - m1;
                    }
                }
            }
            Format::Q6_K => {
                let d = f16_at(blk, 208);
                for k in 0..8 {
                    let v = values_q6k(blk, k);
                    for (i, (o, &q)) in o[32 * k..32 * k + 32].iter_mut().zip(&v).enumerate() {
                        let sc = blk[192 + 2 * k + i / 16] as i8;
                        *o = d * sc as f32 * q as f32;
                    }
                }
            }
        }
    }
}

/// The 32 integer values of a 32-value block (Q4_1/Q5_1 without their minimum).
pub fn values32(format: Format, blk: &[u8]) -> [i16; QK] {
    let mut v = [0i16; QK];
    let (qs, qh, offset) = match format {
        Format::Q8_0 => {
            for (v, &b) in v.iter_mut().zip(&blk[2..34]) {
                *v = b as i8 as i16;
            }
            return v;
        }
        Format::Q4_0 => (&blk[2..18], 0u32, 8),
        Format::Q4_1 => (&blk[4..20], 0, 0),
        Format::Q5_0 => (&blk[6..22], u32_at(blk, 2), 16),
        Format::Q5_1 => (&blk[8..24], u32_at(blk, 4), 0),
        _ => return v,
    };
    for j in 0..16 {
        let h0 = ((qh >> j) & 1) as i16 * 16;
        let h1 = ((qh >> (j + 16)) & 1) as i16 * 16;
        v[j] = (qs[j] & 0x0f) as i16 + h0 - offset;
        v[j + 16] = (qs[j] >> 4) as i16 + h1 - offset;
    }
    v
}

/// The 32 unsigned values (before scale and minimum) of sub-block `j` of a Q4_K/Q5_K block.
pub fn values_k(format: Format, blk: &[u8], j: usize) -> [i16; QK] {
    let qs_at = if format == Format::Q5_K { 48 } else { 16 };
    let qs = &blk[qs_at + 32 * (j / 2)..qs_at + 32 * (j / 2) + 32];
    let mut v = [0i16; QK];
    for l in 0..32 {
        let q = if j.is_multiple_of(2) {
            qs[l] & 0x0f
        } else {
            qs[l] >> 4
        };
        let h = if format == Format::Q5_K {
            ((blk[16 + l] >> j) & 1) * 16
        } else {
            0
        };
        v[l] = (q + h) as i16;
    }
    v
}

/// The 32 signed values (`q - 32`) of chunk `k` (0..8) of a Q6_K block (see [`q6k_chunk`]).
pub fn values_q6k(blk: &[u8], k: usize) -> [i16; QK] {
    let (lo, nib_shift, hi, h_shift) = q6k_chunk(k);
    let mut v = [0i16; QK];
    for l in 0..32 {
        let q = ((blk[lo + l] >> nib_shift) & 0x0f) | (((blk[hi + l] >> h_shift) & 3) << 4);
        v[l] = q as i16 - 32;
    }
    v
}

/// The little-endian `u32` at `b[at..at + 4]`.
#[inline(always)]
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
