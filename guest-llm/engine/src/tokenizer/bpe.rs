//! GPT-2 byte-level BPE built from a GGUF vocabulary and merge list (borrowed).

use super::pretokenize::PreTokenizer;
use super::special::{Piece, Specials};
use crate::error::{format_err, Result};
use alloc::string::String;
use alloc::vec::Vec;

/// GGUF token types (`tokenizer.ggml.token_type`).
pub mod token_type {
    /// Ordinary text token.
    pub const NORMAL: u8 = 1;
    /// Unknown-token placeholder.
    pub const UNKNOWN: u8 = 2;
    /// Control token (`<|im_start|>`); never produced from plain text.
    pub const CONTROL: u8 = 3;
    /// User-defined token, matched literally in text.
    pub const USER_DEFINED: u8 = 4;
    /// Unused slot.
    pub const UNUSED: u8 = 5;
    /// Raw byte token `<0xXX>`.
    pub const BYTE: u8 = 6;
}

/// GPT-2's reversible map from bytes to printable characters.
fn byte_to_char_table() -> [char; 256] {
    let mut t = ['\0'; 256];
    let mut extra = 0u32;
    for b in 0..256u32 {
        let printable =
            (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
        let cp = if printable {
            b
        } else {
            extra += 1;
            255 + extra
        };
        t[b as usize] = char::from_u32(cp).unwrap_or('\u{fffd}');
    }
    t
}

/// A byte-level BPE tokenizer.
#[derive(Debug, Clone)]
pub struct BpeTokenizer<'a> {
    tokens: Vec<&'a str>,
    types: Vec<u8>,
    by_text: Vec<u32>,
    merges: Vec<(&'a str, &'a str, u32)>,
    specials: Specials,
    byte_char: [char; 256],
    pre: PreTokenizer,
}

impl<'a> BpeTokenizer<'a> {
    /// Builds the tokenizer from token strings, optional token types, merges (`"a b"`)
    /// and the pre-tokenizer name.
    pub fn new(
        tokens: Vec<&'a str>,
        types: Option<Vec<u8>>,
        merges: &[&'a str],
        pre: Option<&str>,
    ) -> Result<Self> {
        if tokens.is_empty() {
            return Err(format_err!("empty vocabulary"));
        }
        let types = match types {
            Some(t) if t.len() != tokens.len() => {
                return Err(format_err!(
                    "token_type has {} entries for {} tokens",
                    t.len(),
                    tokens.len()
                ))
            }
            Some(t) => t,
            None => alloc::vec![token_type::NORMAL; tokens.len()],
        };
        let mut by_text: Vec<u32> = (0..tokens.len() as u32).collect();
        by_text.sort_by(|&a, &b| tokens[a as usize].cmp(tokens[b as usize]).then(a.cmp(&b)));
        let mut ms = Vec::with_capacity(merges.len());
        for (rank, m) in merges.iter().enumerate() {
            let (a, b) = m
                .split_once(' ')
                .ok_or_else(|| format_err!("merge {rank} ({m:?}) has no space"))?;
            ms.push((a, b, rank as u32));
        }
        ms.sort_by(|x, y| (x.0, x.1, x.2).cmp(&(y.0, y.1, y.2)));
        ms.dedup_by(|later, first| later.0 == first.0 && later.1 == first.1);
        let specials = Specials::new(&tokens, &types);
        Ok(BpeTokenizer {
            tokens,
            types,
            by_text,
            merges: ms,
            specials,
            byte_char: byte_to_char_table(),
            pre: PreTokenizer::from_name(pre),
        })
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// Id of the token whose text is exactly `s`.
    pub fn token_id(&self, s: &str) -> Option<u32> {
        self.by_text
            .binary_search_by(|&i| self.tokens[i as usize].cmp(s))
            .ok()
            .map(|k| self.by_text[k])
    }

    /// Text of token `id` as stored in the vocabulary.
    pub fn token_text(&self, id: u32) -> Option<&'a str> {
        self.tokens.get(id as usize).copied()
    }

    /// Type of token `id`.
    pub fn token_type(&self, id: u32) -> Option<u8> {
        self.types.get(id as usize).copied()
    }

    fn rank(&self, a: &str, b: &str) -> Option<u32> {
        self.merges
            .binary_search_by(|m| (m.0, m.1).cmp(&(a, b)))
            .ok()
            .map(|k| self.merges[k].2)
    }

    /// Encodes `text`. User-defined token texts in `text` become those tokens; with
    /// `parse_special` control token texts too (see [`super::special`]).
    pub fn encode(&self, text: &str, parse_special: bool, out: &mut Vec<u32>) {
        for piece in self
            .specials
            .partition(text, parse_special, &self.tokens, &self.types)
        {
            match piece {
                Piece::Text(a, b) => self.encode_plain(&text[a..b], out),
                Piece::Token(id) => out.push(id),
            }
        }
    }

    fn encode_plain(&self, text: &str, out: &mut Vec<u32>) {
        let mut word = String::new();
        let mut syms: Vec<(usize, usize)> = Vec::new();
        for (a, b) in self.pre.split(text) {
            word.clear();
            for &byte in &text.as_bytes()[a..b] {
                word.push(self.byte_char[byte as usize]);
            }
            // Symbols are byte ranges of `word`, one per mapped character to start.
            syms.clear();
            syms.extend(word.char_indices().map(|(i, c)| (i, i + c.len_utf8())));
            super::merge::merge(&mut syms, |a, b| {
                self.rank(&word[a.0..a.1], &word[b.0..b.1])
                    .map(|r| (core::cmp::Reverse(r), (a.0, b.1)))
            });
            for &(s0, s1) in &syms {
                let sym = &word[s0..s1];
                match self.token_id(sym) {
                    Some(id) => out.push(id),
                    None => {
                        // Not in the vocabulary (only with a defective vocabulary):
                        // fall back to one token per mapped character when possible.
                        for (i, c) in sym.char_indices() {
                            if let Some(id) = self.token_id(&sym[i..i + c.len_utf8()]) {
                                out.push(id);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Appends the bytes token `id` stands for. Control tokens produce nothing unless
    /// `show_special`.
    pub fn decode(&self, id: u32, show_special: bool, out: &mut Vec<u8>) {
        let (Some(text), Some(ty)) = (self.token_text(id), self.token_type(id)) else {
            return;
        };
        match ty {
            token_type::CONTROL | token_type::UNKNOWN | token_type::UNUSED => {
                if show_special {
                    out.extend_from_slice(text.as_bytes());
                }
            }
            token_type::USER_DEFINED => out.extend_from_slice(text.as_bytes()),
            token_type::BYTE => match super::parse_byte_token(text.as_bytes()) {
                Some(b) => out.push(b),
                None => out.extend_from_slice(text.as_bytes()),
            },
            _ => {
                for c in text.chars() {
                    match self.byte_char.iter().position(|&m| m == c) {
                        Some(b) => out.push(b as u8),
                        None => {
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                    }
                }
            }
        }
    }
}
