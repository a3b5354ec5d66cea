//! Splitting text at special-token texts before the tokenizer proper sees it, as llama.cpp
//! does (`tokenizer_st_partition`): the special tokens are taken longest text first (ties:
//! lowest id), and every occurrence of each one in the text not yet claimed becomes that
//! token. User-defined tokens are always split out; control and unknown tokens only when
//! special texts are parsed (a prompt with `<|im_start|>` typed by the program, never
//! text a user typed).

use super::bpe::token_type;
use alloc::vec::Vec;

/// A piece of partitioned text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece {
    /// Ordinary text: the byte range `start..end` of the input.
    Text(usize, usize),
    /// A special token.
    Token(u32),
}

/// The special tokens of a vocabulary, in matching order.
#[derive(Debug, Clone, Default)]
pub struct Specials {
    ids: Vec<u32>,
}

impl Specials {
    /// Collects the control, user-defined and unknown tokens with a non-empty text.
    pub fn new(texts: &[&str], types: &[u8]) -> Self {
        let mut ids: Vec<u32> = (0..texts.len() as u32)
            .filter(|&i| {
                matches!(
                    types[i as usize],
                    token_type::CONTROL | token_type::USER_DEFINED | token_type::UNKNOWN
                ) && !texts[i as usize].is_empty()
            })
            .collect();
        ids.sort_by(|&a, &b| {
            texts[b as usize]
                .len()
                .cmp(&texts[a as usize].len())
                .then(a.cmp(&b))
        });
        Specials { ids }
    }

    /// Splits `text`. With `parse_special` false only user-defined tokens are split out.
    pub fn partition(
        &self,
        text: &str,
        parse_special: bool,
        texts: &[&str],
        types: &[u8],
    ) -> Vec<Piece> {
        let mut pieces = alloc::vec![Piece::Text(0, text.len())];
        if text.is_empty() {
            pieces.clear();
            return pieces;
        }
        for &id in &self.ids {
            if !parse_special && types[id as usize] != token_type::USER_DEFINED {
                continue;
            }
            let pat = texts[id as usize];
            if !pieces
                .iter()
                .any(|p| matches!(p, Piece::Text(a, b) if text[*a..*b].contains(pat)))
            {
                continue;
            }
            let mut next = Vec::with_capacity(pieces.len() + 2);
            for p in pieces {
                let Piece::Text(mut a, b) = p else {
                    next.push(p);
                    continue;
                };
                while let Some(at) = text[a..b].find(pat) {
                    if at > 0 {
                        next.push(Piece::Text(a, a + at));
                    }
                    next.push(Piece::Token(id));
                    a += at + pat.len();
                }
                if a < b {
                    next.push(Piece::Text(a, b));
                }
            }
            pieces = next;
        }
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_first_and_user_defined_always() {
        let texts = ["<a>", "<ab>", "\n", "\n\n", "x"];
        let types = [3, 3, 4, 4, 1];
        let s = Specials::new(&texts, &types);
        let t = "q<ab>\n\n\n<a>";
        assert_eq!(
            s.partition(t, true, &texts, &types),
            [
                Piece::Text(0, 1),
                Piece::Token(1),
                Piece::Token(3),
                Piece::Token(2),
                Piece::Token(0)
            ]
        );
        assert_eq!(
            s.partition(t, false, &texts, &types),
            [
                Piece::Text(0, 5),
                Piece::Token(3),
                Piece::Token(2),
                Piece::Text(8, 11)
            ]
        );
        assert!(s.partition("", true, &texts, &types).is_empty());
    }
}
