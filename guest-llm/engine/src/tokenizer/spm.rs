//! The llama2.c `tokenizer.bin` tokenizer (SentencePiece-style: scored pieces, greedy
//! highest-score pair merging, byte fallback via `<0xXX>` pieces).

use crate::error::{format_err, Result};
use crate::le::Reader;
use alloc::vec::Vec;

/// BOS id used by llama2.c models.
pub const BOS: u32 = 1;
/// EOS id used by llama2.c models.
pub const EOS: u32 = 2;

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

/// A llama2.c tokenizer, borrowing piece bytes from `tokenizer.bin`.
#[derive(Debug, Clone)]
pub struct SpmTokenizer<'a> {
    pieces: Vec<&'a [u8]>,
    scores: Vec<f32>,
    by_piece: Vec<u32>,
    byte_tokens: [Option<u32>; 256],
}

impl<'a> SpmTokenizer<'a> {
    /// Parses `tokenizer.bin` holding `vocab_size` entries.
    pub fn parse(file: &'a [u8], vocab_size: usize) -> Result<Self> {
        let mut r = Reader::new(file);
        let max_len = r.i32("max_token_length")?;
        if max_len <= 0 || max_len > 1 << 16 {
            return Err(format_err!("tokenizer.bin: max_token_length {max_len}"));
        }
        if vocab_size == 0 || vocab_size > r.remaining() / 8 {
            return Err(format_err!(
                "tokenizer.bin: too small for a vocabulary of {vocab_size}"
            ));
        }
        let mut pieces = Vec::with_capacity(vocab_size);
        let mut scores = Vec::with_capacity(vocab_size);
        for i in 0..vocab_size {
            let score = r.f32("token score")?;
            let len = r.i32("token length")?;
            if len < 0 || len > max_len {
                return Err(format_err!("tokenizer.bin: token {i} has length {len}"));
            }
            if !score.is_finite() {
                return Err(format_err!("tokenizer.bin: token {i} has score {score}"));
            }
            pieces.push(r.bytes(len as usize, "token bytes")?);
            scores.push(score);
        }
        let mut by_piece: Vec<u32> = (0..vocab_size as u32).collect();
        by_piece.sort_by(|&a, &b| pieces[a as usize].cmp(pieces[b as usize]).then(a.cmp(&b)));
        let mut byte_tokens = [None; 256];
        for (i, p) in pieces.iter().enumerate() {
            if let Some(b) = super::parse_byte_token(p) {
                byte_tokens[b as usize].get_or_insert(i as u32);
            }
        }
        Ok(SpmTokenizer {
            pieces,
            scores,
            by_piece,
            byte_tokens,
        })
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    /// Id of the piece with exactly these bytes.
    pub fn piece_id(&self, s: &[u8]) -> Option<u32> {
        self.by_piece
            .binary_search_by(|&i| self.pieces[i as usize].cmp(s))
            .ok()
            .map(|k| self.by_piece[k])
    }

    /// Encodes `text` as llama2.c does: optional BOS, a dummy-prefix space, per-character
    /// lookup with byte fallback, then highest-score pair merging. Bytes without a piece
    /// are counted in the returned drop count.
    pub fn encode(&self, text: &str, bos: bool, out: &mut Vec<u32>) -> usize {
        let start = out.len();
        if bos {
            out.push(BOS);
        }
        let mut dropped = 0;
        let mut toks: Vec<u32> = Vec::new();
        if !text.is_empty() {
            if let Some(id) = self.piece_id(b" ") {
                toks.push(id);
            }
        }
        for (i, c) in text.char_indices() {
            let bytes = &text.as_bytes()[i..i + c.len_utf8()];
            match self.piece_id(bytes) {
                Some(id) => toks.push(id),
                None => {
                    for &b in bytes {
                        match self.byte_tokens[b as usize] {
                            Some(id) => toks.push(id),
                            None => dropped += 1,
                        }
                    }
                }
            }
        }
        let mut buf = Vec::new();
        // Highest score first, leftmost on ties (as run.c's scan with a strict `>`).
        super::merge::merge(&mut toks, |&a, &b| {
            buf.clear();
            buf.extend_from_slice(self.pieces[a as usize]);
            buf.extend_from_slice(self.pieces[b as usize]);
            self.piece_id(&buf)
                .map(|id| (Score(self.scores[id as usize]), id))
        });
        out.extend_from_slice(&toks);
        debug_assert!(out.len() >= start);
        dropped
    }

    /// Appends the bytes of token `id` following token `prev` (after BOS the leading
    /// space of the dummy prefix is dropped; `<0xXX>` pieces are raw bytes).
    pub fn decode(&self, prev: Option<u32>, id: u32, out: &mut Vec<u8>) {
        let Some(&p) = self.pieces.get(id as usize) else {
            return;
        };
        if let Some(b) = super::parse_byte_token(p) {
            out.push(b);
            return;
        }
        if id == BOS || id == EOS {
            return;
        }
        let p = if prev == Some(BOS) && p.first() == Some(&b' ') {
            &p[1..]
        } else {
            p
        };
        out.extend_from_slice(p);
    }
}
