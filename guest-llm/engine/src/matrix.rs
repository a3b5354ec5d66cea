//! Borrowed weight matrices and the (parallel) matrix product.

use crate::blocks::{self, Format};
use crate::error::{format_err, Error, Result};
use crate::half::{f16_to_f32, round_f16};
use crate::le::{f32_at, u16_at};
use crate::parallel::Parallel;
use crate::quant::{self, GroupActs, Q8Acts, Q8KActs, Q4_1_BLOCK, Q8_0_BLOCK, QK};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

// Row kernels: NEON on aarch64, portable elsewhere (x86_64 hosts switch to AVX2 or
// AVX-512 VNNI at run time in `rows_dispatch`). All compute identical bits.
#[cfg(not(all(target_arch = "aarch64", target_feature = "neon")))]
use crate::kernels::portable as blk;
#[cfg(not(all(target_arch = "aarch64", target_feature = "neon")))]
use crate::quant as kern;
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
use crate::quant_neon as kern;
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
use crate::quant_neon as blk;

/// Storage format of a weight tensor, borrowed from the model file.
#[derive(Debug, Clone, Copy)]
#[allow(non_camel_case_types)]
pub enum Storage<'a> {
    /// Little-endian f32 values.
    F32(&'a [u8]),
    /// Little-endian binary16 values.
    F16(&'a [u8]),
    /// ggml Q8_0 blocks.
    Q8_0(&'a [u8]),
    /// ggml Q4_1 blocks.
    Q4_1(&'a [u8]),
    /// ggml Q4_0 blocks.
    Q4_0(&'a [u8]),
    /// ggml Q5_0 blocks.
    Q5_0(&'a [u8]),
    /// ggml Q5_1 blocks.
    Q5_1(&'a [u8]),
    /// ggml Q4_K super-blocks.
    Q4_K(&'a [u8]),
    /// ggml Q5_K super-blocks.
    Q5_K(&'a [u8]),
    /// ggml Q6_K super-blocks.
    Q6_K(&'a [u8]),
    /// llama2.c int8 values with one f32 scale per `group` values.
    GroupQ8 {
        /// int8 values, row-major.
        q: &'a [u8],
        /// f32 scales, one per group.
        s: &'a [u8],
        /// Values per group.
        group: usize,
    },
}

impl<'a> Storage<'a> {
    /// Wraps the data of a ggml tensor of block format `format`.
    pub fn quantized(format: Format, data: &'a [u8]) -> Self {
        match format {
            Format::Q4_0 => Storage::Q4_0(data),
            Format::Q4_1 => Storage::Q4_1(data),
            Format::Q5_0 => Storage::Q5_0(data),
            Format::Q5_1 => Storage::Q5_1(data),
            Format::Q8_0 => Storage::Q8_0(data),
            Format::Q4_K => Storage::Q4_K(data),
            Format::Q5_K => Storage::Q5_K(data),
            Format::Q6_K => Storage::Q6_K(data),
        }
    }

    /// The block format and data of a ggml-quantized matrix.
    pub fn block_format(&self) -> Option<(Format, &'a [u8])> {
        Some(match *self {
            Storage::Q4_0(b) => (Format::Q4_0, b),
            Storage::Q4_1(b) => (Format::Q4_1, b),
            Storage::Q5_0(b) => (Format::Q5_0, b),
            Storage::Q5_1(b) => (Format::Q5_1, b),
            Storage::Q8_0(b) => (Format::Q8_0, b),
            Storage::Q4_K(b) => (Format::Q4_K, b),
            Storage::Q5_K(b) => (Format::Q5_K, b),
            Storage::Q6_K(b) => (Format::Q6_K, b),
            Storage::F32(_) | Storage::F16(_) | Storage::GroupQ8 { .. } => return None,
        })
    }
}

/// A `rows x cols` row-major matrix in its file format.
#[derive(Debug, Clone, Copy)]
pub struct Matrix<'a> {
    /// Output dimension.
    pub rows: usize,
    /// Input dimension (values per row).
    pub cols: usize,
    /// The borrowed data.
    pub storage: Storage<'a>,
}

/// The kernel family of x86-64 host builds, chosen at run time.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// Plain Rust.
    Portable,
    /// AVX2 (with F16C).
    Avx2,
    /// AVX-512 VNNI on 256-bit vectors for the 32-value formats, AVX2 for the rest.
    Vnni,
}

/// The most capable kernels allowed (`u8` of [`Kernels`]; all compute the same bits).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
static KERNELS_MAX: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(2);

#[cfg(all(feature = "std", target_arch = "x86_64"))]
impl Kernels {
    /// The best kernels this CPU runs, capped by [`set_kernels`].
    pub fn current() -> Kernels {
        let max = KERNELS_MAX.load(Ordering::Relaxed);
        if max >= 2 && crate::quant_avx2::has_vnni() {
            Kernels::Vnni
        } else if max >= 1 && crate::quant_avx2::has_avx2() {
            Kernels::Avx2
        } else {
            Kernels::Portable
        }
    }
}

/// Caps the kernels used (host builds): they compute the same bits as the portable
/// kernels; this switch exists so tests and benchmarks can show that.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
pub fn set_kernels(max: Kernels) {
    KERNELS_MAX.store(max as u8, Ordering::Relaxed);
}

/// Row `r` of the block formats against inputs `t0..t0 + tb` with the 32-value kernels
/// of module `$k32` (see [`crate::quant::dot32_n`]) and the K kernels of module `$k`
/// (see [`crate::kernels`]); evaluates to whether the storage was one of them.
macro_rules! block_rows {
    ($k32:path, $k:path, $m:expr, $r:expr, $acts:expr, $t0:expr, $tb:expr, $o:expr) => {{
        use $k as k;
        use $k32 as k32;
        let (m, r, t0, o) = ($m, $r, $t0, $o);
        let row = |format: Format, b: &'a [u8]| {
            let rb = m.cols / format.block_values() * format.block_bytes();
            &b[r * rb..(r + 1) * rb]
        };
        macro_rules! run {
            ($m_:ident :: $f:ident, $format:expr, $b:expr, $a:expr) => {{
                let w = row($format, $b);
                if $tb == TOKEN_BLOCK {
                    o.copy_from_slice(&$m_::$f(
                        w,
                        core::array::from_fn::<_, TOKEN_BLOCK, _>(|j| &$a[t0 + j]),
                    ));
                } else {
                    for (j, v) in o.iter_mut().enumerate() {
                        *v = $m_::$f(w, [&$a[t0 + j]])[0];
                    }
                }
                true
            }};
        }
        match (&m.storage, $acts) {
            (Storage::Q4_0(b), Acts::Q8(a)) => run!(k32::dot_q4_0_n, Format::Q4_0, b, a),
            (Storage::Q4_1(b), Acts::Q8(a)) => run!(k32::dot_q4_1_n, Format::Q4_1, b, a),
            (Storage::Q5_0(b), Acts::Q8(a)) => run!(k32::dot_q5_0_n, Format::Q5_0, b, a),
            (Storage::Q5_1(b), Acts::Q8(a)) => run!(k32::dot_q5_1_n, Format::Q5_1, b, a),
            (Storage::Q8_0(b), Acts::Q8(a)) => run!(k32::dot_q8_0_n, Format::Q8_0, b, a),
            (Storage::Q4_K(b), Acts::Q8K(a)) => run!(k::dot_q4_k_n, Format::Q4_K, b, a),
            (Storage::Q5_K(b), Acts::Q8K(a)) => run!(k::dot_q5_k_n, Format::Q5_K, b, a),
            (Storage::Q6_K(b), Acts::Q8K(a)) => run!(k::dot_q6_k_n, Format::Q6_K, b, a),
            _ => false,
        }
    }};
}

/// Rows handed to one work item of a parallel product.
pub const ROWS_PER_CHUNK: usize = 16;
/// Inputs multiplied together against each weight block during batched prefill: 16 on
/// x86-64, whose kernels unpack (and transpose) a weight block once for all of them, 8
/// elsewhere (the NEON kernels' registers). Every input's arithmetic is the same for
/// any count, so this changes no result.
#[cfg(target_arch = "x86_64")]
pub const TOKEN_BLOCK: usize = 16;
/// Inputs multiplied together against each weight block during batched prefill.
#[cfg(not(target_arch = "x86_64"))]
pub const TOKEN_BLOCK: usize = 8;

/// A borrowed view of converted inputs, as the kernels take them.
#[derive(Clone, Copy)]
enum Acts<'i> {
    F32(&'i [f32]),
    F16(&'i [f32]),
    Q8(&'i [Q8Acts]),
    Q8K(&'i [Q8KActs]),
    Group(&'i [GroupActs]),
}

/// What an [`Inputs`] currently holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    F32,
    F16,
    Q8,
    Q8K,
    Group(usize),
}

/// Input vectors converted for one storage format (quantized for the block formats and
/// llama2.c Q8, rounded through f16 for F16). Several matrices with the same input and a
/// compatible format (e.g. Q, K and V) share one conversion ([`Matrix::accepts`]). A
/// reused `Inputs` keeps a buffer per kind of conversion, so converting again allocates
/// nothing once they are large enough, whatever mix of formats a model has.
pub struct Inputs {
    kind: Kind,
    f: Vec<f32>,
    q8: Vec<Q8Acts>,
    q8k: Vec<Q8KActs>,
    group: Vec<GroupActs>,
    n: usize,
    cols: usize,
}

impl Default for Inputs {
    fn default() -> Self {
        Inputs {
            kind: Kind::F32,
            f: Vec::new(),
            q8: Vec::new(),
            q8k: Vec::new(),
            group: Vec::new(),
            n: 0,
            cols: 0,
        }
    }
}

impl Inputs {
    fn acts(&self) -> Acts<'_> {
        match self.kind {
            Kind::F32 => Acts::F32(&self.f),
            Kind::F16 => Acts::F16(&self.f),
            Kind::Q8 => Acts::Q8(&self.q8[..self.n]),
            Kind::Q8K => Acts::Q8K(&self.q8k[..self.n]),
            Kind::Group(_) => Acts::Group(&self.group[..self.n]),
        }
    }
}

/// Output cells of the parallel products: one `f32` per output, stored by whichever core
/// computes it (relaxed atomics compile to plain loads and stores). Reused across
/// products, so they allocate only when a product is larger than any before.
#[derive(Default)]
pub struct Cells(Vec<AtomicU32>);

impl Cells {
    /// Makes room for `n` cells.
    pub fn ensure(&mut self, n: usize) {
        if self.0.len() < n {
            self.0.resize_with(n, || AtomicU32::new(0));
        }
    }
    /// Stores `v` in cell `i`.
    #[inline(always)]
    pub fn set(&self, i: usize, v: f32) {
        self.0[i].store(v.to_bits(), Ordering::Relaxed);
    }
    /// The value in cell `i`.
    #[inline(always)]
    pub fn get(&self, i: usize) -> f32 {
        f32::from_bits(self.0[i].load(Ordering::Relaxed))
    }
    /// Copies cells `0..out.len()` into `out`.
    pub fn read_into(&self, out: &mut [f32]) {
        for (o, c) in out.iter_mut().zip(&self.0) {
            *o = f32::from_bits(c.load(Ordering::Relaxed));
        }
    }
}

impl<'a> Matrix<'a> {
    /// Checks that the data has exactly the size the shape needs and returns the matrix.
    pub fn new(rows: usize, cols: usize, storage: Storage<'a>, name: &str) -> Result<Self> {
        let n = rows
            .checked_mul(cols)
            .ok_or_else(|| format_err!("{name}: shape {rows}x{cols} overflows"))?;
        let (have, need) = match storage {
            Storage::F32(b) => (b.len(), n.checked_mul(4)),
            Storage::F16(b) => (b.len(), n.checked_mul(2)),
            Storage::Q8_0(b)
            | Storage::Q4_1(b)
            | Storage::Q4_0(b)
            | Storage::Q5_0(b)
            | Storage::Q5_1(b)
            | Storage::Q4_K(b)
            | Storage::Q5_K(b)
            | Storage::Q6_K(b) => {
                let Some((format, _)) = storage.block_format() else {
                    unreachable!("quantized storage has a block format")
                };
                let bv = format.block_values();
                if !cols.is_multiple_of(bv) {
                    return Err(format_err!(
                        "{name}: row length {cols} is not a multiple of the block size {bv} of {format:?}"
                    ));
                }
                (b.len(), (n / bv).checked_mul(format.block_bytes()))
            }
            Storage::GroupQ8 { q, s, group } => {
                if group == 0 || !cols.is_multiple_of(group) {
                    return Err(format_err!(
                        "{name}: row length {cols} is not a multiple of the group size {group}"
                    ));
                }
                if s.len() != (n / group) * 4 {
                    return Err(format_err!("{name}: scale table has the wrong size"));
                }
                (q.len(), Some(n))
            }
        };
        if need != Some(have) {
            return Err(format_err!(
                "{name}: data is {have} bytes, shape {rows}x{cols} needs {need:?}"
            ));
        }
        Ok(Matrix {
            rows,
            cols,
            storage,
        })
    }

    /// Bytes of weight data (as held in the file).
    pub fn byte_len(&self) -> usize {
        match self.storage {
            Storage::GroupQ8 { q, s, .. } => q.len() + s.len(),
            Storage::F32(b) | Storage::F16(b) => b.len(),
            _ => self.storage.block_format().map_or(0, |(_, b)| b.len()),
        }
    }

    /// Writes row `r` as f32 into `out` (used for the token embedding).
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) -> Result<()> {
        if r >= self.rows || out.len() != self.cols {
            return Err(Error::InvalidArgument(alloc::format!(
                "row {r} of a {}-row matrix",
                self.rows
            )));
        }
        let c = self.cols;
        match self.storage {
            Storage::F32(b) => {
                for (i, o) in out.iter_mut().enumerate() {
                    *o = f32_at(b, r * c + i);
                }
            }
            Storage::F16(b) => {
                for (i, o) in out.iter_mut().enumerate() {
                    *o = f16_to_f32(u16_at(b, r * c + i));
                }
            }
            Storage::Q8_0(b) => {
                let row = &b[r * (c / QK) * Q8_0_BLOCK..(r + 1) * (c / QK) * Q8_0_BLOCK];
                for (blk, o) in row.chunks_exact(Q8_0_BLOCK).zip(out.chunks_exact_mut(QK)) {
                    let d = f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
                    for j in 0..QK {
                        o[j] = (blk[2 + j] as i8) as f32 * d;
                    }
                }
            }
            Storage::Q4_1(b) => {
                let row = &b[r * (c / QK) * Q4_1_BLOCK..(r + 1) * (c / QK) * Q4_1_BLOCK];
                for (blk, o) in row.chunks_exact(Q4_1_BLOCK).zip(out.chunks_exact_mut(QK)) {
                    let d = f16_to_f32(u16::from_le_bytes([blk[0], blk[1]]));
                    let m = f16_to_f32(u16::from_le_bytes([blk[2], blk[3]]));
                    for j in 0..16 {
                        o[j] = (blk[4 + j] & 0x0f) as f32 * d + m;
                        o[j + 16] = (blk[4 + j] >> 4) as f32 * d + m;
                    }
                }
            }
            Storage::GroupQ8 { q, s, group } => {
                for (i, o) in out.iter_mut().enumerate() {
                    let k = r * c + i;
                    *o = (q[k] as i8) as f32 * f32_at(s, k / group);
                }
            }
            other => {
                if let Some((format, b)) = other.block_format() {
                    let rb = c / format.block_values() * format.block_bytes();
                    blocks::dequantize_row(format, &b[r * rb..(r + 1) * rb], out);
                }
            }
        }
        Ok(())
    }

    /// Whether `inp` holds inputs converted for this matrix's format and width.
    pub fn accepts(&self, inp: &Inputs) -> bool {
        inp.cols == self.cols && inp.kind == self.input_kind()
    }

    /// The conversion this matrix's inputs need.
    fn input_kind(&self) -> Kind {
        match self.storage {
            Storage::F32(_) => Kind::F32,
            Storage::F16(_) => Kind::F16,
            Storage::Q8_0(_)
            | Storage::Q4_1(_)
            | Storage::Q4_0(_)
            | Storage::Q5_0(_)
            | Storage::Q5_1(_) => Kind::Q8,
            Storage::Q4_K(_) | Storage::Q5_K(_) | Storage::Q6_K(_) => Kind::Q8K,
            Storage::GroupQ8 { group, .. } => Kind::Group(group),
        }
    }

    /// Converts `n` input vectors (`n * cols` values) for this matrix's format.
    pub fn prepare(&self, xs: &[f32], n: usize) -> Inputs {
        let mut inp = Inputs::default();
        self.prepare_into(xs, n, &mut inp);
        inp
    }

    /// Converts `n` input vectors into `inp`, reusing its buffers.
    pub fn prepare_into(&self, xs: &[f32], n: usize, inp: &mut Inputs) {
        assert_eq!(xs.len(), n * self.cols, "matmul input shape");
        let c = self.cols;
        /// `v` at least `n` long (longer ones keep their extra entries for later, larger
        /// batches).
        fn at_least<T: Default>(v: &mut Vec<T>, n: usize) -> &mut [T] {
            if v.len() < n {
                v.resize_with(n, T::default);
            }
            &mut v[..n]
        }
        let kind = self.input_kind();
        match kind {
            Kind::F32 => {
                inp.f.clear();
                inp.f.extend_from_slice(xs);
            }
            Kind::F16 => {
                inp.f.clear();
                inp.f.extend(xs.iter().map(|&x| round_f16(x)));
            }
            Kind::Q8 => {
                for (t, a) in at_least(&mut inp.q8, n).iter_mut().enumerate() {
                    a.quantize_into(&xs[t * c..(t + 1) * c]);
                }
            }
            Kind::Q8K => {
                for (t, a) in at_least(&mut inp.q8k, n).iter_mut().enumerate() {
                    a.quantize_into(&xs[t * c..(t + 1) * c]);
                }
            }
            Kind::Group(group) => {
                for (t, a) in at_least(&mut inp.group, n).iter_mut().enumerate() {
                    a.quantize_into(&xs[t * c..(t + 1) * c], group);
                }
            }
        }
        inp.kind = kind;
        inp.n = n;
        inp.cols = c;
    }

    /// Dot products of rows `r0..r1` with inputs `t0..t0 + TB` (at most [`TOKEN_BLOCK`]),
    /// into `out[(r - r0) * TOKEN_BLOCK + k]`, with the portable (or, on aarch64, NEON)
    /// kernels.
    #[inline(always)]
    fn rows_kernel(
        &self,
        r0: usize,
        r1: usize,
        acts: Acts<'_>,
        t0: usize,
        tb: usize,
        out: &mut [f32],
    ) {
        for (i, r) in (r0..r1).enumerate() {
            let o = &mut out[i * TOKEN_BLOCK..i * TOKEN_BLOCK + tb];
            if !block_rows!(kern, blk, self, r, acts, t0, tb, &mut *o) {
                for (k, v) in o.iter_mut().enumerate() {
                    *v = self.dot_row(r, acts, t0 + k);
                }
            }
        }
    }

    /// [`Matrix::rows_kernel`] with the AVX2 kernels (bit-identical, see `quant_avx2`).
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2,f16c")]
    fn rows_kernel_avx2(
        &self,
        r0: usize,
        r1: usize,
        acts: Acts<'_>,
        t0: usize,
        tb: usize,
        out: &mut [f32],
    ) {
        for (i, r) in (r0..r1).enumerate() {
            let o = &mut out[i * TOKEN_BLOCK..i * TOKEN_BLOCK + tb];
            if !block_rows!(
                crate::quant_avx2,
                crate::quant_avx2,
                self,
                r,
                acts,
                t0,
                tb,
                &mut *o
            ) {
                for (j, v) in o.iter_mut().enumerate() {
                    *v = self.dot_row(r, acts, t0 + j);
                }
            }
        }
    }

    /// [`Matrix::rows_kernel`] with the AVX-512 VNNI kernels (bit-identical).
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2,f16c,avx512vnni,avx512vl")]
    fn rows_kernel_vnni(
        &self,
        r0: usize,
        r1: usize,
        acts: Acts<'_>,
        t0: usize,
        tb: usize,
        out: &mut [f32],
    ) {
        use crate::quant_avx2::vnni;
        for (i, r) in (r0..r1).enumerate() {
            let o = &mut out[i * TOKEN_BLOCK..i * TOKEN_BLOCK + tb];
            if !block_rows!(vnni, vnni, self, r, acts, t0, tb, &mut *o) {
                for (j, v) in o.iter_mut().enumerate() {
                    *v = self.dot_row(r, acts, t0 + j);
                }
            }
        }
    }

    #[inline]
    fn rows_dispatch(
        &self,
        r0: usize,
        r1: usize,
        acts: Acts<'_>,
        t0: usize,
        tb: usize,
        out: &mut [f32],
    ) {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        match Kernels::current() {
            Kernels::Vnni => {
                // SAFETY: `current` only answers Vnni when the CPU has AVX2, F16C,
                // AVX-512 VNNI and VL, the function's whole `target_feature` list.
                unsafe { self.rows_kernel_vnni(r0, r1, acts, t0, tb, out) };
                return;
            }
            Kernels::Avx2 => {
                // SAFETY: `current` only answers Avx2 when the CPU has AVX2 and F16C.
                unsafe { self.rows_kernel_avx2(r0, r1, acts, t0, tb, out) };
                return;
            }
            Kernels::Portable => {}
        }
        self.rows_kernel(r0, r1, acts, t0, tb, out)
    }

    #[inline(always)]
    fn dot_row(&self, r: usize, acts: Acts<'_>, t: usize) -> f32 {
        let c = self.cols;
        match (&self.storage, acts) {
            (Storage::F32(b), Acts::F32(x)) => {
                quant::dot_f32(&b[r * c * 4..(r + 1) * c * 4], &x[t * c..(t + 1) * c])
            }
            (Storage::F16(b), Acts::F16(x)) => {
                quant::dot_f16(&b[r * c * 2..(r + 1) * c * 2], &x[t * c..(t + 1) * c])
            }
            (Storage::GroupQ8 { q, s, group }, Acts::Group(a)) => {
                let gpr = c / group;
                quant::dot_group_q8(
                    &q[r * c..(r + 1) * c],
                    &s[r * gpr * 4..(r + 1) * gpr * 4],
                    *group,
                    &a[t],
                )
            }
            // quantize_inputs always builds the variant that matches the storage.
            _ => f32::NAN,
        }
    }

    /// Computes `out[t * rows + r] = dot(row r, xs[t * cols ..])` for `n` input vectors.
    ///
    /// Rows are split into chunks of [`ROWS_PER_CHUNK`] handed to `par`; every output is
    /// computed by the same code whatever the split, so results are identical for any
    /// number of workers and for any batch size.
    pub fn matmul(&self, par: &dyn Parallel, xs: &[f32], n: usize, out: &mut [f32]) {
        let inp = self.prepare(xs, n);
        self.matmul_prepared(par, &inp, &mut Cells::default(), out);
    }

    /// Multiplies prepared inputs (see [`Matrix::prepare_into`]), with `cells` as the
    /// scratch of the parallel product.
    pub fn matmul_prepared(
        &self,
        par: &dyn Parallel,
        inp: &Inputs,
        cells: &mut Cells,
        out: &mut [f32],
    ) {
        let n = inp.n;
        assert!(self.accepts(inp), "inputs prepared for another format");
        assert_eq!(out.len(), n * self.rows, "matmul output shape");
        let acts = inp.acts();
        cells.ensure(n * self.rows);
        let cells: &Cells = cells;
        let rows = self.rows;
        let chunks = rows.div_ceil(ROWS_PER_CHUNK);
        par.for_each(chunks, &|ci| {
            let r0 = ci * ROWS_PER_CHUNK;
            let r1 = (r0 + ROWS_PER_CHUNK).min(rows);
            let mut buf = [0.0f32; ROWS_PER_CHUNK * TOKEN_BLOCK];
            let mut t0 = 0;
            while t0 < n {
                let tb = if n - t0 >= TOKEN_BLOCK {
                    TOKEN_BLOCK
                } else {
                    1
                };
                self.rows_dispatch(r0, r1, acts, t0, tb, &mut buf);
                // Input by input, so each input's outputs (one cache line for a full
                // chunk) are written at once: the inputs' rows are `rows * 4` bytes apart,
                // often a multiple of 4 KiB, where a row-by-row order thrashes one cache
                // set.
                for k in 0..tb {
                    for (i, r) in (r0..r1).enumerate() {
                        cells.set((t0 + k) * rows + r, buf[i * TOKEN_BLOCK + k]);
                    }
                }
                t0 += tb;
            }
        });
        cells.read_into(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parallel::Serial;

    struct Reversed;
    impl Parallel for Reversed {
        fn for_each(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
            for i in (0..n).rev() {
                f(i);
            }
        }
    }

    #[test]
    fn matmul_same_for_any_split_and_batch() {
        let rows = 40;
        let cols = 64;
        let w: Vec<u8> = (0..rows * cols)
            .flat_map(|i| (((i * 37) % 101) as f32 / 50.0 - 1.0).to_le_bytes())
            .collect();
        let m = Matrix::new(rows, cols, Storage::F32(&w), "w").unwrap();
        let xs: Vec<f32> = (0..3 * cols).map(|i| (i % 13) as f32 - 6.0).collect();
        let mut a = alloc::vec![0.0; 3 * rows];
        let mut b = alloc::vec![0.0; 3 * rows];
        m.matmul(&Serial, &xs, 3, &mut a);
        m.matmul(&Reversed, &xs, 3, &mut b);
        assert_eq!(a, b);
        let mut one = alloc::vec![0.0; rows];
        m.matmul(&Serial, &xs[cols..2 * cols], 1, &mut one);
        assert_eq!(&a[rows..2 * rows], &one[..]);
        // Row 5 of input 0 by hand.
        let exact: f32 = (0..cols).map(|i| f32_at(&w, 5 * cols + i) * xs[i]).sum();
        assert!((a[5] - exact).abs() < 1e-3);
    }

    #[test]
    fn wrong_sizes_are_rejected() {
        let b = [0u8; 100];
        assert!(Matrix::new(2, 32, Storage::Q8_0(&b), "x").is_err());
        assert!(Matrix::new(2, 33, Storage::Q4_1(&b[..40]), "x").is_err());
        assert!(Matrix::new(usize::MAX, 3, Storage::F32(&b), "x").is_err());
        assert!(Matrix::new(2, 32, Storage::Q4_1(&b[..40]), "x").is_ok());
    }
}
