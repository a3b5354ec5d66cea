//! Tokenizers: GPT-2 byte-level BPE (GGUF) and llama2.c's `tokenizer.bin`.

pub mod bpe;
mod merge;
pub mod pretokenize;
pub mod spm;
pub mod utf8;

use crate::error::{format_err, Result};
use crate::gguf::Gguf;
use alloc::boxed::Box;
use alloc::vec::Vec;
pub use bpe::BpeTokenizer;
pub use spm::SpmTokenizer;
pub use utf8::Utf8Stream;

/// Parses a `<0xXX>` byte-token piece.
pub(crate) fn parse_byte_token(p: &[u8]) -> Option<u8> {
    if p.len() != 6 || &p[..3] != b"<0x" || p[5] != b'>' {
        return None;
    }
    let hex = |c: u8| (c as char).to_digit(16);
    Some((hex(p[3])? * 16 + hex(p[4])?) as u8)
}

/// Streaming detokenizer: feed generated tokens one at a time, get the text that is
/// complete so far (multi-byte characters split across tokens are held back).
#[derive(Debug, Clone)]
pub struct Detokenizer<'t, 'a> {
    tok: &'t Tokenizer<'a>,
    prev: Option<u32>,
    stream: Utf8Stream,
    buf: Vec<u8>,
}

impl<'t, 'a> Detokenizer<'t, 'a> {
    /// Starts after `prev` (the last prompt token, which matters for llama2.c's leading
    /// space rule).
    pub fn new(tok: &'t Tokenizer<'a>, prev: Option<u32>) -> Self {
        Detokenizer {
            tok,
            prev,
            stream: Utf8Stream::new(),
            buf: Vec::new(),
        }
    }

    /// Adds one token; returns the newly completed text (possibly empty).
    pub fn push(&mut self, id: u32) -> alloc::string::String {
        self.buf.clear();
        self.tok.decode(self.prev, id, &mut self.buf);
        self.prev = Some(id);
        self.stream.push(&self.buf)
    }

    /// Ends the stream (an incomplete trailing character becomes U+FFFD).
    pub fn finish(&mut self) -> alloc::string::String {
        self.stream.finish()
    }
}

/// Either kind of tokenizer, with the model's special-token conventions.
#[derive(Debug, Clone)]
pub struct Tokenizer<'a> {
    kind: Kind<'a>,
    /// Beginning-of-sequence token, if the model has one.
    pub bos: Option<u32>,
    /// Tokens that end generation.
    pub stop: Vec<u32>,
    /// Whether prompts start with BOS (as llama.cpp decides for this model).
    pub add_bos: bool,
}

#[derive(Debug, Clone)]
enum Kind<'a> {
    Bpe(Box<BpeTokenizer<'a>>),
    Spm(Box<SpmTokenizer<'a>>),
}

impl<'a> Tokenizer<'a> {
    /// Builds the GPT-2 BPE tokenizer stored in a GGUF file.
    pub fn from_gguf(g: &Gguf<'a>) -> Result<Self> {
        let model = g.string("tokenizer.ggml.model")?.unwrap_or("");
        if model != "gpt2" {
            return Err(crate::Error::Unsupported(alloc::format!(
                "tokenizer model {model:?} (only gpt2 byte-level BPE)"
            )));
        }
        let toks = g
            .array("tokenizer.ggml.tokens")?
            .ok_or_else(|| format_err!("missing tokenizer.ggml.tokens"))?;
        let tokens = toks.strings()?.collect::<Result<Vec<_>>>()?;
        let types = match g.array("tokenizer.ggml.token_type")? {
            Some(a) => Some(
                (0..a.len)
                    .map(|i| a.int(i).map(|v| v.clamp(0, 255) as u8))
                    .collect::<Result<Vec<_>>>()?,
            ),
            None => None,
        };
        let merges = match g.array("tokenizer.ggml.merges")? {
            Some(a) => a.strings()?.collect::<Result<Vec<_>>>()?,
            None => Vec::new(),
        };
        let pre = g.string("tokenizer.ggml.pre")?;
        let bpe = BpeTokenizer::new(tokens, types, &merges, pre)?;
        let n = bpe.vocab_size() as u64;
        let id = |k: &str| -> Result<Option<u32>> {
            match g.get(k) {
                Some(_) => {
                    let v = g.uint(k, u32::MAX as u64)?;
                    if v >= n {
                        return Err(format_err!("{k} = {v} is outside the vocabulary ({n})"));
                    }
                    Ok(Some(v as u32))
                }
                None => Ok(None),
            }
        };
        let bos = id("tokenizer.ggml.bos_token_id")?;
        let mut stop = Vec::new();
        for k in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"] {
            if let Some(t) = id(k)? {
                if !stop.contains(&t) {
                    stop.push(t);
                }
            }
        }
        let add_bos = match g.get("tokenizer.ggml.add_bos_token") {
            Some(crate::gguf::Value::Bool(b)) => *b,
            Some(_) => return Err(format_err!("tokenizer.ggml.add_bos_token is not a bool")),
            // llama.cpp's default for gpt2-style vocabularies is no BOS.
            None => false,
        };
        Ok(Tokenizer {
            kind: Kind::Bpe(Box::new(bpe)),
            bos,
            stop,
            add_bos: add_bos && bos.is_some(),
        })
    }

    /// Parses llama2.c's `tokenizer.bin` for a model with `vocab_size` tokens.
    pub fn from_llama2c(file: &'a [u8], vocab_size: usize) -> Result<Self> {
        let spm = SpmTokenizer::parse(file, vocab_size)?;
        Ok(Tokenizer {
            kind: Kind::Spm(Box::new(spm)),
            bos: Some(spm::BOS),
            // run.c stops when the model produces BOS (sequence delimiter); EOS too.
            stop: alloc::vec![spm::BOS, spm::EOS],
            add_bos: true,
        })
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        match &self.kind {
            Kind::Bpe(b) => b.vocab_size(),
            Kind::Spm(s) => s.vocab_size(),
        }
    }

    /// Id of the token with exactly this text (special tokens included).
    pub fn token_id(&self, s: &str) -> Option<u32> {
        match &self.kind {
            Kind::Bpe(b) => b.token_id(s),
            Kind::Spm(sp) => sp.piece_id(s.as_bytes()),
        }
    }

    /// Encodes ordinary text (no BOS, special-token texts not interpreted).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        match &self.kind {
            Kind::Bpe(b) => b.encode(text, false, &mut out),
            Kind::Spm(s) => {
                s.encode(text, false, &mut out);
            }
        }
        out
    }

    /// Encodes a prompt the way llama.cpp does for this model: BOS if the model wants
    /// it, and special-token texts (such as `<|im_start|>`) parsed as those tokens.
    pub fn encode_prompt(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        match &self.kind {
            Kind::Bpe(b) => {
                if let (true, Some(bos)) = (self.add_bos, self.bos) {
                    out.push(bos);
                }
                b.encode(text, true, &mut out);
            }
            Kind::Spm(s) => {
                s.encode(text, self.add_bos, &mut out);
            }
        }
        out
    }

    /// Encodes one ChatML user turn (optionally after a system turn) and opens the
    /// assistant turn, like `encode_prompt(&chat::chatml(system, user))`, except that
    /// the template's `<|im_start|>`/`<|im_end|>` are inserted by id and the system and
    /// user texts are encoded as plain text: text that looks like a control token
    /// cannot inject one.
    pub fn encode_chatml(&self, system: Option<&str>, user: &str) -> crate::Result<Vec<u32>> {
        let (Some(start), Some(end)) = (self.token_id("<|im_start|>"), self.token_id("<|im_end|>"))
        else {
            return Err(crate::Error::Unsupported(
                "this vocabulary has no ChatML tokens (<|im_start|>, <|im_end|>)".into(),
            ));
        };
        let mut out = Vec::new();
        if let (true, Some(bos)) = (self.add_bos, self.bos) {
            out.push(bos);
        }
        let turn = |role: &str, text: Option<&str>, out: &mut Vec<u32>| {
            out.push(start);
            let mut s = alloc::string::String::from(role);
            s.push('\n');
            if let Some(t) = text {
                s.push_str(t);
            }
            out.extend(self.encode(&s));
            if text.is_some() {
                out.push(end);
                out.extend(self.encode("\n"));
            }
        };
        if let Some(sys) = system {
            turn("system", Some(sys), &mut out);
        }
        turn("user", Some(user), &mut out);
        turn("assistant", None, &mut out);
        Ok(out)
    }

    /// Appends the bytes of `id` (which followed `prev`) to `out`. Control tokens add
    /// nothing.
    pub fn decode(&self, prev: Option<u32>, id: u32, out: &mut Vec<u8>) {
        match &self.kind {
            Kind::Bpe(b) => b.decode(id, false, out),
            Kind::Spm(s) => s.decode(prev, id, out),
        }
    }

    /// Decodes a whole token sequence to bytes.
    pub fn decode_all(&self, ids: &[u32]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev = None;
        for &id in ids {
            self.decode(prev, id, &mut out);
            prev = Some(id);
        }
        out
    }

    /// Whether `id` ends generation.
    pub fn is_stop(&self, id: u32) -> bool {
        self.stop.contains(&id)
    }
}
