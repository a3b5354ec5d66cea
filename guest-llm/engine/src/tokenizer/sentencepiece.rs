//! The SentencePiece vocabulary of a GGUF file (`tokenizer.ggml.model = llama`: pieces,
//! scores, token types), encoded as llama.cpp's SPM tokenizer does:
//!
//! 1. special-token texts are split out ([`super::special`]);
//! 2. each text fragment gets a leading space if the file asks for a space prefix and the
//!    fragment starts the text or follows a special token, then every space becomes
//!    U+2581 (`▁`);
//! 3. the fragment starts as one symbol per character; the adjacent pair whose
//!    concatenation is a vocabulary piece with the highest score merges first (the
//!    leftmost on ties), until no pair is a piece;
//! 4. a symbol that is not a piece becomes its bytes' `<0xXX>` tokens (byte fallback).
//!
//! Decoding: normal pieces with `▁` as spaces, byte tokens as their byte, user-defined
//! pieces as written, control and unused tokens as nothing.

use super::bpe::token_type;
use super::special::{Piece, Specials};
use crate::error::{format_err, Result};
use alloc::vec::Vec;

/// SentencePiece's visible space, U+2581.
const SPACE: &str = "\u{2581}";

/// A finite score ordered for the merge queue.
#[derive(Clone, Copy, PartialEq)]
struct Score(f32);
impl Eq for Score {}
impl PartialOrd for Score {
    fn partial_cmp(&self, o: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Score {
    fn cmp(&self, o: &Self) -> core::cmp::Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// A GGUF SentencePiece tokenizer, borrowing the piece strings from the file.
#[derive(Debug, Clone)]
pub struct SentencePiece<'a> {
    pieces: Vec<&'a str>,
    scores: Vec<f32>,
    types: Vec<u8>,
    by_text: Vec<u32>,
    specials: Specials,
    byte_tokens: [Option<u32>; 256],
    unknown: Option<u32>,
    add_space_prefix: bool,
}

impl<'a> SentencePiece<'a> {
    /// Builds the tokenizer from the pieces, their scores and types (as many of each),
    /// the unknown token (used when a byte has no `<0xXX>` piece) and the space-prefix
    /// rule.
    pub fn new(
        pieces: Vec<&'a str>,
        scores: Vec<f32>,
        types: Vec<u8>,
        unknown: Option<u32>,
        add_space_prefix: bool,
    ) -> Result<Self> {
        let n = pieces.len();
        if n == 0 {
            return Err(format_err!("empty vocabulary"));
        }
        if scores.len() != n || types.len() != n {
            return Err(format_err!(
                "{n} tokens but {} scores and {} token types",
                scores.len(),
                types.len()
            ));
        }
        if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
            return Err(format_err!("token {i} has score {}", scores[i]));
        }
        if unknown.is_some_and(|u| u as usize >= n) {
            return Err(format_err!("unknown token outside the vocabulary"));
        }
        let mut by_text: Vec<u32> = (0..n as u32).collect();
        by_text.sort_by(|&a, &b| pieces[a as usize].cmp(pieces[b as usize]).then(a.cmp(&b)));
        let mut byte_tokens = [None; 256];
        for (i, p) in pieces.iter().enumerate() {
            if types[i] == token_type::BYTE {
                if let Some(b) = super::parse_byte_token(p.as_bytes()) {
                    byte_tokens[b as usize].get_or_insert(i as u32);
                }
            }
        }
        Ok(SentencePiece {
            specials: Specials::new(&pieces, &types),
            pieces,
            scores,
            types,
            by_text,
            byte_tokens,
            unknown,
            add_space_prefix,
        })
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    /// Id of the piece whose text is exactly `s` (the lowest id if several are).
    pub fn token_id(&self, s: &str) -> Option<u32> {
        let k = self
            .by_text
            .partition_point(|&i| self.pieces[i as usize] < s);
        let &id = self.by_text.get(k)?;
        (self.pieces[id as usize] == s).then_some(id)
    }

    /// Whether the tokenizer puts a space before text at the start and after specials.
    pub fn add_space_prefix(&self) -> bool {
        self.add_space_prefix
    }

    /// Encodes `text` (no BOS). With `parse_special`, control token texts become those
    /// tokens; user-defined token texts always do.
    pub fn encode(&self, text: &str, parse_special: bool, out: &mut Vec<u32>) {
        let mut prev_special = true;
        let mut buf = alloc::string::String::new();
        for piece in self
            .specials
            .partition(text, parse_special, &self.pieces, &self.types)
        {
            match piece {
                Piece::Text(a, b) => {
                    buf.clear();
                    if self.add_space_prefix && prev_special {
                        buf.push_str(SPACE);
                    }
                    for c in text[a..b].chars() {
                        if c == ' ' {
                            buf.push_str(SPACE);
                        } else {
                            buf.push(c);
                        }
                    }
                    self.encode_fragment(&buf, out);
                    prev_special = false;
                }
                Piece::Token(id) => {
                    out.push(id);
                    prev_special = true;
                }
            }
        }
    }

    fn encode_fragment(&self, s: &str, out: &mut Vec<u32>) {
        // Symbols are byte ranges of `s`, one per character to start.
        let mut syms: Vec<(usize, usize)> = s
            .char_indices()
            .map(|(i, c)| (i, i + c.len_utf8()))
            .collect();
        super::merge::merge(&mut syms, |a, b| {
            let id = self.token_id(&s[a.0..b.1])?;
            Some((Score(self.scores[id as usize]), (a.0, b.1)))
        });
        for &(a, b) in &syms {
            match self.token_id(&s[a..b]) {
                Some(id) => out.push(id),
                None => {
                    for &byte in &s.as_bytes()[a..b] {
                        if let Some(id) = self.byte_tokens[byte as usize].or(self.unknown) {
                            out.push(id);
                        }
                    }
                }
            }
        }
    }

    /// Appends the bytes of token `id`; `at_start` strips the space prefix of the first
    /// piece of a text.
    pub fn decode(&self, id: u32, at_start: bool, out: &mut Vec<u8>) {
        let (Some(p), Some(&ty)) = (self.pieces.get(id as usize), self.types.get(id as usize))
        else {
            return;
        };
        match ty {
            token_type::NORMAL => {
                let mut rest = *p;
                if at_start && self.add_space_prefix {
                    rest = rest.strip_prefix(SPACE).unwrap_or(rest);
                }
                for (i, part) in rest.split(SPACE).enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    out.extend_from_slice(part.as_bytes());
                }
            }
            token_type::BYTE => match super::parse_byte_token(p.as_bytes()) {
                Some(b) => out.push(b),
                None => out.extend_from_slice(p.as_bytes()),
            },
            token_type::USER_DEFINED => out.extend_from_slice(p.as_bytes()),
            _ => {}
        }
    }

    /// Whether `id` is a control token (decodes to nothing).
    pub fn is_control(&self, id: u32) -> bool {
        self.types.get(id as usize) == Some(&token_type::CONTROL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn tok(prefix: bool) -> SentencePiece<'static> {
        let mut pieces = vec![
            "<unk>", "<s>", "</s>", "\n", "▁", "a", "b", "ab", "▁ab", "▁a", "c",
        ];
        let mut scores = vec![0.0, 0.0, 0.0, 0.0, -5.0, -1.0, -1.0, -2.0, -3.0, -4.0, -1.0];
        let mut types = vec![3, 3, 3, 4, 1, 1, 1, 1, 1, 1, 1];
        const BYTES: [&str; 4] = ["<0x41>", "<0xC3>", "<0xA9>", "<0x0A>"];
        for b in BYTES {
            pieces.push(b);
            scores.push(0.0);
            types.push(6);
        }
        SentencePiece::new(pieces, scores, types, Some(0), prefix).unwrap()
    }

    #[test]
    fn merges_by_score_with_byte_fallback_and_specials() {
        let t = tok(false);
        let mut out = Vec::new();
        t.encode("ab ab\nAé", false, &mut out);
        // "ab" (score -2) beats "▁a" (-4); then "▁ab"; "\n" is user-defined; A and é
        // have no piece: bytes.
        assert_eq!(out, [7, 8, 3, 11, 12, 13]);
        out.clear();
        t.encode("</s>c", true, &mut out);
        assert_eq!(out, [2, 10]);
        out.clear();
        t.encode("</s>c", false, &mut out);
        assert_eq!(&out[out.len() - 1..], [10]);
        let t = tok(true);
        out.clear();
        t.encode("ab", false, &mut out);
        assert_eq!(out, [8]);
        let mut bytes = Vec::new();
        for (i, &id) in [8u32, 8, 3, 12, 13, 2].iter().enumerate() {
            t.decode(id, i == 0, &mut bytes);
        }
        assert_eq!(bytes, "ab ab\n\u{e9}".as_bytes());
    }

    #[test]
    fn bad_vocabularies_are_errors() {
        assert!(SentencePiece::new(vec![], vec![], vec![], None, false).is_err());
        assert!(SentencePiece::new(vec!["a"], vec![f32::NAN], vec![1], None, false).is_err());
        assert!(SentencePiece::new(vec!["a"], vec![0.0, 1.0], vec![1], None, false).is_err());
        assert!(SentencePiece::new(vec!["a"], vec![0.0], vec![1], Some(1), false).is_err());
    }
}
