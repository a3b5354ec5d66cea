//! Zero-copy GGUF (v2/v3) parser: header, metadata, tensor table, aligned data section.
//!
//! Everything returned borrows from the file slice. The file is untrusted: counts,
//! lengths, dimensions and offsets are all checked before use.

use crate::blocks::Format;
use crate::error::{format_err, Error, Result};
use crate::le::Reader;
use crate::matrix::{Matrix, Storage};
use alloc::vec::Vec;

const MAGIC: u32 = 0x4655_4747; // "GGUF" little-endian
const MAX_TENSORS: u64 = 1 << 16;
const MAX_KV: u64 = 1 << 16;
const MAX_DIMS: u32 = 4;
const MAX_NESTING: u32 = 2;

/// ggml tensor type ids this engine computes with.
pub mod ggml_type {
    /// 32-bit float.
    pub const F32: u32 = 0;
    /// 16-bit float.
    pub const F16: u32 = 1;
    /// 4-bit blocks with scale and minimum.
    pub const Q4_1: u32 = 3;
    /// 8-bit blocks with scale.
    pub const Q8_0: u32 = 8;
}

/// The tensor types this engine computes with, for messages.
pub const SUPPORTED_TYPES: &str = "F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K";

/// Name of a ggml tensor type id, for messages.
pub fn type_name(t: u32) -> &'static str {
    const NAMES: [&str; 31] = [
        "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K",
        "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL",
        "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16",
    ];
    NAMES.get(t as usize).copied().unwrap_or("unknown")
}

/// A metadata value type id.
mod vt {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;
}

/// A metadata value, borrowed from the file.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// Any integer type, widened.
    Int(i128),
    /// f32 or f64, widened.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A UTF-8 string.
    Str(&'a str),
    /// An array (kept raw; see [`Array`]).
    Array(Array<'a>),
}

/// A metadata array, borrowed from the file.
#[derive(Debug, Clone, Copy)]
pub struct Array<'a> {
    /// Element type id.
    pub elem_type: u32,
    /// Number of elements.
    pub len: usize,
    raw: &'a [u8],
}

impl<'a> Array<'a> {
    /// Iterates the elements of a string array.
    pub fn strings(&self) -> Result<StrIter<'a>> {
        if self.elem_type != vt::STRING {
            return Err(format_err!(
                "array holds type {}, not strings",
                self.elem_type
            ));
        }
        Ok(StrIter {
            r: Reader::new(self.raw),
            left: self.len,
        })
    }

    /// Reads scalar element `i` (any numeric or bool element type).
    fn scalar(&self, i: usize) -> Result<Value<'a>> {
        let size = scalar_size(self.elem_type)
            .ok_or_else(|| format_err!("array holds type {}, not scalars", self.elem_type))?;
        if i >= self.len {
            return Err(format_err!("array index {i} out of range ({})", self.len));
        }
        let mut r = Reader::new(&self.raw[i * size..(i + 1) * size]);
        read_scalar(&mut r, self.elem_type)
    }

    /// Reads element `i` of an integer array.
    pub fn int(&self, i: usize) -> Result<i128> {
        match self.scalar(i)? {
            Value::Int(v) => Ok(v),
            _ => Err(format_err!(
                "array holds type {}, not integers",
                self.elem_type
            )),
        }
    }

    /// Reads element `i` of a float array.
    pub fn float(&self, i: usize) -> Result<f64> {
        match self.scalar(i)? {
            Value::Float(v) => Ok(v),
            _ => Err(format_err!(
                "array holds type {}, not floats",
                self.elem_type
            )),
        }
    }

    /// Reads element `i` of a bool array.
    pub fn bool(&self, i: usize) -> Result<bool> {
        match self.scalar(i)? {
            Value::Bool(v) => Ok(v),
            _ => Err(format_err!(
                "array holds type {}, not bools",
                self.elem_type
            )),
        }
    }
}

/// Iterator over a string array.
pub struct StrIter<'a> {
    r: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for StrIter<'a> {
    type Item = Result<&'a str>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        Some(read_string(&mut self.r))
    }
}

/// One entry of the tensor table.
#[derive(Debug, Clone)]
pub struct TensorInfo<'a> {
    /// Tensor name.
    pub name: &'a str,
    /// Dimensions, innermost (row length) first.
    pub dims: Vec<u64>,
    /// ggml type id.
    pub ty: u32,
    /// Absolute offset of the data in the file.
    pub offset: usize,
    /// Data bytes (empty for types whose size this engine does not know).
    pub data: &'a [u8],
}

/// A parsed GGUF file.
#[derive(Debug)]
pub struct Gguf<'a> {
    /// Format version (2 or 3).
    pub version: u32,
    /// Data alignment (`general.alignment`, default 32).
    pub alignment: usize,
    /// Metadata key/value pairs, in file order.
    pub metadata: Vec<(&'a str, Value<'a>)>,
    /// Tensor table, in file order.
    pub tensors: Vec<TensorInfo<'a>>,
    /// Absolute offset of the data section.
    pub data_offset: usize,
}

fn scalar_size(t: u32) -> Option<usize> {
    Some(match t {
        vt::U8 | vt::I8 | vt::BOOL => 1,
        vt::U16 | vt::I16 => 2,
        vt::U32 | vt::I32 | vt::F32 => 4,
        vt::U64 | vt::I64 | vt::F64 => 8,
        _ => return None,
    })
}

fn read_string<'a>(r: &mut Reader<'a>) -> Result<&'a str> {
    let len = r.u64("string length")?;
    if len > r.remaining() as u64 {
        return Err(format_err!(
            "string of {len} bytes at offset {} runs past the end of the file",
            r.pos()
        ));
    }
    let b = r.bytes(len as usize, "string")?;
    core::str::from_utf8(b).map_err(|_| format_err!("string at offset {} is not UTF-8", r.pos()))
}

fn read_scalar<'a>(r: &mut Reader<'a>, t: u32) -> Result<Value<'a>> {
    Ok(match t {
        vt::U8 => Value::Int(r.u8("u8")? as i128),
        vt::I8 => Value::Int(r.u8("i8")? as i8 as i128),
        vt::U16 => Value::Int(r.u16("u16")? as i128),
        vt::I16 => Value::Int(r.u16("i16")? as i16 as i128),
        vt::U32 => Value::Int(r.u32("u32")? as i128),
        vt::I32 => Value::Int(r.i32("i32")? as i128),
        vt::U64 => Value::Int(r.u64("u64")? as i128),
        vt::I64 => Value::Int(r.u64("i64")? as i64 as i128),
        vt::F32 => Value::Float(r.f32("f32")? as f64),
        vt::F64 => Value::Float(f64::from_bits(r.u64("f64")?)),
        vt::BOOL => match r.u8("bool")? {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            b => return Err(format_err!("bool value {b} at offset {}", r.pos() - 1)),
        },
        other => return Err(format_err!("unknown metadata type {other}")),
    })
}

fn read_value<'a>(r: &mut Reader<'a>, t: u32, depth: u32) -> Result<Value<'a>> {
    match t {
        vt::STRING => Ok(Value::Str(read_string(r)?)),
        vt::ARRAY => {
            if depth >= MAX_NESTING {
                return Err(format_err!("metadata arrays nested too deeply"));
            }
            let elem_type = r.u32("array type")?;
            let len = r.u64("array length")?;
            // Every element takes at least one byte (strings at least eight).
            if len > r.remaining() as u64 {
                return Err(format_err!("array of {len} elements runs past the end"));
            }
            let len = len as usize;
            let start = r.pos();
            if let Some(size) = scalar_size(elem_type) {
                let bytes = len
                    .checked_mul(size)
                    .ok_or_else(|| format_err!("array size overflows"))?;
                r.bytes(bytes, "array")?;
            } else {
                for _ in 0..len {
                    read_value(r, elem_type, depth + 1)?;
                }
            }
            let raw = r.span(start, r.pos());
            Ok(Value::Array(Array {
                elem_type,
                len,
                raw,
            }))
        }
        t => read_scalar(r, t),
    }
}

/// Bytes needed by `n` elements of ggml type `ty` with row length `ne0`, if known.
fn tensor_bytes(ty: u32, n: u64, ne0: u64) -> Option<u64> {
    match ty {
        ggml_type::F32 => n.checked_mul(4),
        ggml_type::F16 => n.checked_mul(2),
        _ => {
            let f = Format::from_ggml(ty)?;
            if !ne0.is_multiple_of(f.block_values() as u64) {
                return None;
            }
            f.bytes_for(n)
        }
    }
}

impl<'a> Gguf<'a> {
    /// Parses the header, metadata and tensor table of `file`.
    pub fn parse(file: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(file);
        let magic = r.u32("magic")?;
        if magic != MAGIC {
            return Err(format_err!("bad magic {magic:#010x}, not a GGUF file"));
        }
        let version = r.u32("version")?;
        if version != 2 && version != 3 {
            return Err(Error::Unsupported(alloc::format!("GGUF version {version}")));
        }
        let n_tensors = r.u64("tensor count")?;
        let n_kv = r.u64("metadata count")?;
        if n_tensors > MAX_TENSORS || n_kv > MAX_KV {
            return Err(format_err!(
                "absurd counts: {n_tensors} tensors, {n_kv} metadata entries"
            ));
        }
        let mut metadata = Vec::new();
        for _ in 0..n_kv {
            let key = read_string(&mut r)?;
            let t = r.u32("metadata type")?;
            let v = read_value(&mut r, t, 0)?;
            metadata.push((key, v));
        }
        let mut alignment = 32usize;
        if let Some((_, v)) = metadata.iter().find(|(k, _)| *k == "general.alignment") {
            match v {
                Value::Int(a) if *a > 0 && *a <= 1 << 16 && (*a as u64).is_power_of_two() => {
                    alignment = *a as usize
                }
                _ => return Err(format_err!("general.alignment must be a power of two")),
            }
        }
        let mut tensors = Vec::new();
        for _ in 0..n_tensors {
            let name = read_string(&mut r)?;
            let nd = r.u32("tensor rank")?;
            if nd == 0 || nd > MAX_DIMS {
                return Err(format_err!("tensor {name}: rank {nd}"));
            }
            let mut dims = Vec::new();
            for _ in 0..nd {
                let d = r.u64("tensor dimension")?;
                if d == 0 || d > file.len() as u64 * 2 + 64 {
                    return Err(format_err!("tensor {name}: absurd dimension {d}"));
                }
                dims.push(d);
            }
            let ty = r.u32("tensor type")?;
            let offset = r.u64("tensor offset")?;
            if offset % alignment as u64 != 0 {
                return Err(format_err!("tensor {name}: offset {offset} is not aligned"));
            }
            tensors.push((name, dims, ty, offset));
        }
        let data_offset = r.pos().div_ceil(alignment) * alignment;
        if data_offset > file.len() {
            return Err(format_err!("data section starts past the end of the file"));
        }
        let mut out = Vec::new();
        for (name, dims, ty, offset) in tensors {
            let mut n: u64 = 1;
            for d in &dims {
                n = n
                    .checked_mul(*d)
                    .ok_or_else(|| format_err!("tensor {name}: element count overflows"))?;
            }
            let abs = (data_offset as u64).checked_add(offset);
            let data = match (tensor_bytes(ty, n, dims[0]), abs) {
                (Some(size), Some(abs)) => {
                    let end = abs.checked_add(size).filter(|e| *e <= file.len() as u64);
                    let Some(end) = end else {
                        return Err(format_err!(
                            "tensor {name}: {size} bytes at offset {abs} lie outside the file ({} bytes)",
                            file.len()
                        ));
                    };
                    &file[abs as usize..end as usize]
                }
                (None, Some(_)) if Format::from_ggml(ty).is_some() => {
                    return Err(format_err!(
                        "tensor {name}: row length {} is not a multiple of the {} block size {}",
                        dims[0],
                        type_name(ty),
                        Format::from_ggml(ty).map_or(0, |f| f.block_values())
                    ))
                }
                (_, None) => return Err(format_err!("tensor {name}: offset overflows")),
                (None, Some(_)) => &file[0..0],
            };
            out.push(TensorInfo {
                name,
                dims,
                ty,
                offset: abs.unwrap_or(0) as usize,
                data,
            });
        }
        Ok(Gguf {
            version,
            alignment,
            metadata,
            tensors: out,
            data_offset,
        })
    }

    /// Looks up a metadata value.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.metadata
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// A required integer metadata value that fits `0..=max`.
    pub fn uint(&self, key: &str, max: u64) -> Result<u64> {
        match self.get(key) {
            Some(Value::Int(v)) if *v >= 0 && *v <= max as i128 => Ok(*v as u64),
            Some(Value::Int(v)) => Err(format_err!("{key} = {v} is out of range 0..={max}")),
            Some(_) => Err(format_err!("{key} is not an integer")),
            None => Err(format_err!("missing metadata key {key}")),
        }
    }

    /// An optional float metadata value.
    pub fn float(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            Some(Value::Float(v)) => Ok(Some(*v)),
            Some(Value::Int(v)) => Ok(Some(*v as f64)),
            Some(_) => Err(format_err!("{key} is not a number")),
            None => Ok(None),
        }
    }

    /// An optional string metadata value.
    pub fn string(&self, key: &str) -> Result<Option<&'a str>> {
        match self.get(key) {
            Some(Value::Str(s)) => Ok(Some(s)),
            Some(_) => Err(format_err!("{key} is not a string")),
            None => Ok(None),
        }
    }

    /// An optional array metadata value.
    pub fn array(&self, key: &str) -> Result<Option<Array<'a>>> {
        match self.get(key) {
            Some(Value::Array(a)) => Ok(Some(*a)),
            Some(_) => Err(format_err!("{key} is not an array")),
            None => Ok(None),
        }
    }

    /// Finds a tensor by name.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo<'a>> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Returns tensor `name` as a matrix of `rows x cols` (a vector is `1 x n`), checking
    /// shape and type.
    pub fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Matrix<'a>> {
        let t = self
            .tensor(name)
            .ok_or_else(|| format_err!("missing tensor {name}"))?;
        let want: Vec<u64> = if rows == 1 {
            alloc::vec![cols as u64]
        } else {
            alloc::vec![cols as u64, rows as u64]
        };
        let mut have = t.dims.clone();
        while have.len() > want.len() && have.last() == Some(&1) {
            have.pop();
        }
        if have != want {
            return Err(format_err!(
                "tensor {name} has shape {:?}, expected {:?}",
                t.dims,
                want
            ));
        }
        let storage = match t.ty {
            ggml_type::F32 => Storage::F32(t.data),
            ggml_type::F16 => Storage::F16(t.data),
            other => match Format::from_ggml(other) {
                Some(f) => Storage::quantized(f, t.data),
                None => {
                    return Err(Error::Unsupported(alloc::format!(
                        "tensor {name} has type {} ({other}); supported: {SUPPORTED_TYPES}",
                        type_name(other)
                    )))
                }
            },
        };
        Matrix::new(rows, cols, storage, name)
    }
}
