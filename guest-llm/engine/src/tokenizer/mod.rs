//! Tokenizers: GPT-2 byte-level BPE (GGUF) and llama2.c's `tokenizer.bin`.

pub mod bpe;
mod merge;
pub mod pretokenize;
pub mod sentencepiece;
pub mod special;
pub mod spm;
pub mod utf8;

pub use crate::chat::ChatFormat;
use crate::error::{format_err, Result};
use crate::gguf::Gguf;
use alloc::boxed::Box;
use alloc::vec::Vec;
pub use bpe::token_type;
pub use bpe::BpeTokenizer;
pub use sentencepiece::SentencePiece;
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
    /// The chat turn format of the model.
    pub chat: ChatFormat,
}

#[derive(Debug, Clone)]
enum Kind<'a> {
    Bpe(Box<BpeTokenizer<'a>>),
    Sp(Box<SentencePiece<'a>>),
    Spm(Box<SpmTokenizer<'a>>),
}

/// Texts of the tokens llama.cpp ends generation on whatever the metadata says (its
/// end-of-generation list, the entries that apply to the vocabularies handled here).
const EOG_TEXTS: [&str; 8] = [
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "<|end_of_text|>",
];

impl<'a> Tokenizer<'a> {
    /// Builds the tokenizer stored in a GGUF file: GPT-2 byte-level BPE
    /// (`tokenizer.ggml.model = gpt2`) or SentencePiece (`llama`).
    pub fn from_gguf(g: &Gguf<'a>) -> Result<Self> {
        let model = g.string("tokenizer.ggml.model")?.unwrap_or("");
        let spm = match model {
            "gpt2" => false,
            "llama" => true,
            _ => {
                return Err(crate::Error::Unsupported(alloc::format!(
                "tokenizer model {model:?} (supported: gpt2 byte-level BPE, llama SentencePiece)"
            )))
            }
        };
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
        let n = tokens.len() as u64;
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
        let flag = |k: &str, default: bool| -> Result<bool> {
            match g.get(k) {
                Some(crate::gguf::Value::Bool(b)) => Ok(*b),
                Some(_) => Err(format_err!("{k} is not a bool")),
                None => Ok(default),
            }
        };
        // llama.cpp's defaults: SentencePiece vocabularies add BOS (id 1, EOS 2) and a
        // space prefix; gpt2 ones neither.
        let default_id = |k: &str, d: u32| -> Result<Option<u32>> {
            Ok(id(k)?.or((spm && (d as u64) < n).then_some(d)))
        };
        let bos = default_id("tokenizer.ggml.bos_token_id", 1)?;
        let eos = default_id("tokenizer.ggml.eos_token_id", 2)?;
        let add_bos = flag("tokenizer.ggml.add_bos_token", spm)?;
        let kind = if spm {
            let types = types.unwrap_or_else(|| alloc::vec![token_type::NORMAL; tokens.len()]);
            let scores = match g.array("tokenizer.ggml.scores")? {
                Some(a) => (0..a.len)
                    .map(|i| a.float(i).map(|v| v as f32))
                    .collect::<Result<Vec<_>>>()?,
                None => return Err(format_err!("missing tokenizer.ggml.scores")),
            };
            let unknown = default_id("tokenizer.ggml.unknown_token_id", 0)?;
            let prefix = flag("tokenizer.ggml.add_space_prefix", true)?;
            Kind::Sp(Box::new(SentencePiece::new(
                tokens, scores, types, unknown, prefix,
            )?))
        } else {
            let merges = match g.array("tokenizer.ggml.merges")? {
                Some(a) => a.strings()?.collect::<Result<Vec<_>>>()?,
                None => Vec::new(),
            };
            let pre = g.string("tokenizer.ggml.pre")?;
            Kind::Bpe(Box::new(BpeTokenizer::new(tokens, types, &merges, pre)?))
        };
        let mut tok = Tokenizer {
            kind,
            bos,
            stop: Vec::new(),
            add_bos: add_bos && bos.is_some(),
            chat: ChatFormat::None,
        };
        let by_text: Vec<u32> = EOG_TEXTS.iter().filter_map(|s| tok.token_id(s)).collect();
        for t in [eos, id("tokenizer.ggml.eot_token_id")?]
            .into_iter()
            .flatten()
            .chain(by_text)
        {
            if !tok.stop.contains(&t) {
                tok.stop.push(t);
            }
        }
        tok.chat = ChatFormat::choose(g.string("tokenizer.chat_template")?, |t| {
            tok.token_id(t).is_some()
        });
        Ok(tok)
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
            chat: ChatFormat::None,
        })
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        match &self.kind {
            Kind::Bpe(b) => b.vocab_size(),
            Kind::Sp(s) => s.vocab_size(),
            Kind::Spm(s) => s.vocab_size(),
        }
    }

    /// Id of the token with exactly this text (special tokens included).
    pub fn token_id(&self, s: &str) -> Option<u32> {
        match &self.kind {
            Kind::Bpe(b) => b.token_id(s),
            Kind::Sp(sp) => sp.token_id(s),
            Kind::Spm(sp) => sp.piece_id(s.as_bytes()),
        }
    }

    /// Encodes ordinary text (no BOS, special-token texts not interpreted).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        match &self.kind {
            Kind::Bpe(b) => b.encode(text, false, &mut out),
            Kind::Sp(s) => s.encode(text, false, &mut out),
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
            Kind::Sp(s) => {
                if let (true, Some(bos)) = (self.add_bos, self.bos) {
                    out.push(bos);
                }
                s.encode(text, true, &mut out);
            }
            Kind::Spm(s) => {
                s.encode(text, self.add_bos, &mut out);
            }
        }
        out
    }

    /// Encodes one user turn (optionally with a system message) in the model's chat
    /// format ([`Tokenizer::chat`]) and opens the model's turn, like
    /// `encode_prompt(&self.chat.text(system, user))`, except that the turn markers (and
    /// BOS) are inserted by id and the system and user texts are encoded as plain text:
    /// text that looks like a control token cannot inject one.
    pub fn encode_chat(&self, system: Option<&str>, user: &str) -> crate::Result<Vec<u32>> {
        let markers = self.chat_markers()?;
        let mut out = Vec::new();
        if let (true, Some(bos)) = (self.add_bos, self.bos) {
            out.push(bos);
        }
        self.push_turns(markers, system, user, &mut out);
        Ok(out)
    }

    /// The tokens that continue a conversation after the model's reply: the end of the
    /// model's turn (its marker and newline: the stop token that ended the reply is not part
    /// of the reply's tokens), one user turn, and the model's turn opened. A conversation is
    /// `encode_chat(system, first)`, then per turn the reply's tokens and
    /// `encode_chat_turn(next)`: the same sequence as a chat template over the whole
    /// conversation, so each turn only adds tokens at the end.
    pub fn encode_chat_turn(&self, user: &str) -> crate::Result<Vec<u32>> {
        let (start, end) = self.chat_markers()?;
        let mut out = alloc::vec![end];
        out.extend(self.encode("\n"));
        self.push_turns((start, end), None, user, &mut out);
        Ok(out)
    }

    /// The ids of the chat format's turn start and end markers.
    fn chat_markers(&self) -> crate::Result<(u32, u32)> {
        let (start, end) = self.chat.markers();
        match (self.token_id(start), self.token_id(end)) {
            (Some(start), Some(end)) => Ok((start, end)),
            _ => Err(crate::Error::Unsupported(
                "this vocabulary has no chat turn tokens (ChatML <|im_start|>/<|im_end|> or \
                 Gemma <start_of_turn>/<end_of_turn>)"
                    .into(),
            )),
        }
    }

    /// Appends the closed turns of `system` and `user` and opens the model's turn.
    fn push_turns(
        &self,
        (start, end): (u32, u32),
        system: Option<&str>,
        user: &str,
        out: &mut Vec<u32>,
    ) {
        let mut s = alloc::string::String::new();
        for (role, content) in self.chat.turns(system, user) {
            out.push(start);
            s.clear();
            s.push_str(role);
            s.push('\n');
            s.push_str(&content);
            out.extend(self.encode(&s));
            out.push(end);
            out.extend(self.encode("\n"));
        }
        out.push(start);
        s.clear();
        s.push_str(self.chat.model_role());
        s.push('\n');
        out.extend(self.encode(&s));
    }

    /// Appends the bytes of `id` (which followed `prev`) to `out`. Control tokens add
    /// nothing.
    pub fn decode(&self, prev: Option<u32>, id: u32, out: &mut Vec<u8>) {
        match &self.kind {
            Kind::Bpe(b) => b.decode(id, false, out),
            Kind::Sp(s) => {
                let at_start = match prev {
                    None => true,
                    Some(p) => s.is_control(p),
                };
                s.decode(id, at_start, out)
            }
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
