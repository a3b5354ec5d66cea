//! llama2.c checkpoint loader: the legacy float header (version 0), the float
//! `export.py --version 1` format and the Q8_0 `--version 2` format. Weights are borrowed.

use crate::error::{format_err, Error, Result};
use crate::le::Reader;
use crate::matrix::{Matrix, Storage};
use crate::model::{Arch, Config, Layer, Model, Vector};
use alloc::format;
use alloc::vec::Vec;

const MAGIC: u32 = 0x616b_3432; // "ak42"
const HEADER_V12: usize = 256;

/// Hands out consecutive regions of the file.
struct Cursor<'a> {
    r: Reader<'a>,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, count: usize, elem: usize, what: &str) -> Result<&'a [u8]> {
        let n = count
            .checked_mul(elem)
            .ok_or_else(|| format_err!("{what}: size overflows"))?;
        self.r.bytes(n, what)
    }
    fn f32s(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        self.take(n, 4, what)
    }
    fn norm(&mut self, n: usize, what: &str) -> Result<Vector<'a>> {
        Vector::new(self.f32s(n, what)?, n, what)
    }
    fn f32_matrix(&mut self, rows: usize, cols: usize, what: &str) -> Result<Matrix<'a>> {
        let b = self.f32s(rows.saturating_mul(cols), what)?;
        Matrix::new(rows, cols, Storage::F32(b), what)
    }
    fn q8_matrix(
        &mut self,
        rows: usize,
        cols: usize,
        group: usize,
        what: &str,
    ) -> Result<Matrix<'a>> {
        let n = rows
            .checked_mul(cols)
            .ok_or_else(|| format_err!("{what}: size overflows"))?;
        if n % group != 0 {
            return Err(format_err!(
                "{what}: {n} values are not a multiple of group {group}"
            ));
        }
        let q = self.take(n, 1, what)?;
        let s = self.f32s(n / group, what)?;
        Matrix::new(rows, cols, Storage::GroupQ8 { q, s, group }, what)
    }
}

fn dim(v: i32, what: &str) -> Result<usize> {
    if v <= 0 {
        return Err(format_err!("llama2.c header: {what} = {v}"));
    }
    Ok(v as usize)
}

/// Loads a llama2.c checkpoint. Returns the model (RoPE theta 10000, RMS epsilon 1e-5,
/// as in `run.c`).
pub fn load(file: &[u8]) -> Result<Model<'_>> {
    let mut r = Reader::new(file);
    let first = r.u32("magic")?;
    let (version, mut h) = if first == MAGIC {
        let v = r.i32("version")?;
        (v, r)
    } else {
        (0, Reader::new(file))
    };
    if !matches!(version, 0..=2) {
        return Err(Error::Unsupported(format!(
            "llama2.c checkpoint version {version}"
        )));
    }
    let mut p = [0i32; 7];
    for (i, v) in p.iter_mut().enumerate() {
        *v = h.i32(
            [
                "dim",
                "hidden_dim",
                "n_layers",
                "n_heads",
                "n_kv_heads",
                "vocab_size",
                "seq_len",
            ][i],
        )?;
    }
    let (shared, group) = if version == 0 {
        (p[5] > 0, 0)
    } else {
        let shared = match h.u8("shared_classifier")? {
            0 => false,
            1 => true,
            b => return Err(format_err!("llama2.c header: shared_classifier = {b}")),
        };
        let group = if version == 2 {
            let g = h.i32("group_size")?;
            if g <= 0 || g > 1 << 16 {
                return Err(format_err!("llama2.c header: group_size = {g}"));
            }
            g as usize
        } else {
            0
        };
        (shared, group)
    };
    let config = Config {
        dim: dim(p[0], "dim")?,
        hidden_dim: dim(p[1], "hidden_dim")?,
        n_layers: dim(p[2], "n_layers")?,
        n_heads: dim(p[3], "n_heads")?,
        n_kv_heads: dim(p[4], "n_kv_heads")?,
        vocab_size: dim(p[5].checked_abs().unwrap_or(0), "vocab_size")?,
        max_seq_len: dim(p[6], "seq_len")?,
        head_dim: 0,
        rope_theta: 10_000.0,
        rms_eps: 1e-5,
        arch: Arch::Llama,
    };
    let config = Config {
        head_dim: config.dim / config.n_heads.max(1),
        ..config
    };
    config.validate()?;
    let data_start = if version == 0 { 28 } else { HEADER_V12 };
    if file.len() < data_start {
        return Err(format_err!("llama2.c checkpoint truncated in its header"));
    }
    let mut c = Cursor {
        r: Reader::new(file),
    };
    c.r.seek(data_start)?;
    let (d, hd, l, kv, v) = (
        config.dim,
        config.hidden_dim,
        config.n_layers,
        config.kv_dim(),
        config.vocab_size,
    );
    let model = if version == 0 {
        load_v0(&mut c, config.clone(), shared)?
    } else {
        // Version 1 and 2: norms first, then the matrices in the same order.
        let mut attn_norm = Vec::new();
        let mut ffn_norm = Vec::new();
        for i in 0..l {
            attn_norm.push(c.norm(d, &format!("layer {i} attention norm"))?);
        }
        for i in 0..l {
            ffn_norm.push(c.norm(d, &format!("layer {i} ffn norm"))?);
        }
        let output_norm = c.norm(d, "final norm")?;
        let mut mat = |rows: usize, cols: usize, what: &str| -> Result<Matrix<'_>> {
            if version == 2 {
                c.q8_matrix(rows, cols, group, what)
            } else {
                c.f32_matrix(rows, cols, what)
            }
        };
        let token_embd = mat(v, d, "token embedding")?;
        let mut per_layer = |rows, cols, name: &str| -> Result<Vec<Matrix<'_>>> {
            (0..l)
                .map(|i| mat(rows, cols, &format!("layer {i} {name}")))
                .collect()
        };
        let wq = per_layer(d, d, "wq")?;
        let wk = per_layer(kv, d, "wk")?;
        let wv = per_layer(kv, d, "wv")?;
        let wo = per_layer(d, d, "wo")?;
        let w1 = per_layer(hd, d, "w1")?;
        let w2 = per_layer(d, hd, "w2")?;
        let w3 = per_layer(hd, d, "w3")?;
        let output = if shared {
            token_embd
        } else {
            mat(v, d, "classifier")?
        };
        let layers = (0..l)
            .map(|i| Layer {
                attn_norm: attn_norm[i],
                wq: wq[i],
                wk: wk[i],
                wv: wv[i],
                wo: wo[i],
                ffn_norm: ffn_norm[i],
                w_gate: w1[i],
                w_up: w3[i],
                w_down: w2[i],
                gemma: None,
            })
            .collect();
        Model {
            config,
            token_embd,
            layers,
            output_norm,
            output,
            shared_classifier: shared,
        }
    };
    Ok(model)
}

fn load_v0<'a>(c: &mut Cursor<'a>, config: Config, shared: bool) -> Result<Model<'a>> {
    let (d, hd, l, kv, v) = (
        config.dim,
        config.hidden_dim,
        config.n_layers,
        config.kv_dim(),
        config.vocab_size,
    );
    let token_embd = c.f32_matrix(v, d, "token embedding")?;
    let norms = |c: &mut Cursor<'a>, what: &str| -> Result<Vec<Vector<'a>>> {
        (0..l)
            .map(|i| c.norm(d, &format!("layer {i} {what}")))
            .collect()
    };
    let mats = |c: &mut Cursor<'a>, rows, cols, what: &str| -> Result<Vec<Matrix<'a>>> {
        (0..l)
            .map(|i| c.f32_matrix(rows, cols, &format!("layer {i} {what}")))
            .collect()
    };
    let attn_norm = norms(c, "attention norm")?;
    let wq = mats(c, d, d, "wq")?;
    let wk = mats(c, kv, d, "wk")?;
    let wv = mats(c, kv, d, "wv")?;
    let wo = mats(c, d, d, "wo")?;
    let ffn_norm = norms(c, "ffn norm")?;
    let w1 = mats(c, hd, d, "w1")?;
    let w2 = mats(c, d, hd, "w2")?;
    let w3 = mats(c, hd, d, "w3")?;
    let output_norm = c.norm(d, "final norm")?;
    // Legacy RoPE tables (unused: frequencies are computed), seq_len x head_dim/2 twice.
    let half = config.head_dim / 2;
    c.f32s(config.max_seq_len.saturating_mul(half), "freq_cis_real")?;
    c.f32s(config.max_seq_len.saturating_mul(half), "freq_cis_imag")?;
    let output = if shared {
        token_embd
    } else {
        c.f32_matrix(v, d, "classifier")?
    };
    let layers = (0..l)
        .map(|i| Layer {
            attn_norm: attn_norm[i],
            wq: wq[i],
            wk: wk[i],
            wv: wv[i],
            wo: wo[i],
            ffn_norm: ffn_norm[i],
            w_gate: w1[i],
            w_up: w3[i],
            w_down: w2[i],
            gemma: None,
        })
        .collect();
    Ok(Model {
        config,
        token_embd,
        layers,
        output_norm,
        output,
        shared_classifier: shared,
    })
}
