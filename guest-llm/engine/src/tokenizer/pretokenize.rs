//! Pre-tokenization (splitting text into words before BPE), matching llama.cpp's
//! behaviour for GPT-2 style vocabularies.
//!
//! The GPT-2 pattern is
//! `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
//! implemented here by hand. Some vocabularies (SmolLM's "smollm", StarCoder, ...) first
//! split every digit into its own piece.

use alloc::vec::Vec;
use unicode_general_category::{get_general_category, GeneralCategory as G};

/// Which splitting rules a vocabulary uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreTokenizer {
    /// Plain GPT-2 pattern.
    Gpt2,
    /// Every `\p{N}` character alone, then the GPT-2 pattern.
    DigitsThenGpt2,
}

impl PreTokenizer {
    /// Picks the rules for a `tokenizer.ggml.pre` name.
    pub fn from_name(name: Option<&str>) -> Self {
        match name {
            Some(
                "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone"
                | "minerva-7b",
            ) => PreTokenizer::DigitsThenGpt2,
            _ => PreTokenizer::Gpt2,
        }
    }

    /// Splits `text` into pieces (byte ranges), covering all of it in order.
    pub fn split(self, text: &str) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        match self {
            PreTokenizer::Gpt2 => gpt2_split(text, 0, &mut out),
            PreTokenizer::DigitsThenGpt2 => {
                let mut seg = 0;
                for (i, c) in text.char_indices() {
                    if is_number(c) {
                        if seg < i {
                            gpt2_split(&text[seg..i], seg, &mut out);
                        }
                        out.push((i, i + c.len_utf8()));
                        seg = i + c.len_utf8();
                    }
                }
                if seg < text.len() {
                    gpt2_split(&text[seg..], seg, &mut out);
                }
            }
        }
        out
    }
}

fn is_letter(c: char) -> bool {
    matches!(
        get_general_category(c),
        G::UppercaseLetter
            | G::LowercaseLetter
            | G::TitlecaseLetter
            | G::ModifierLetter
            | G::OtherLetter
    )
}

fn is_number(c: char) -> bool {
    matches!(
        get_general_category(c),
        G::DecimalNumber | G::LetterNumber | G::OtherNumber
    )
}

fn is_other(c: char) -> bool {
    !(c.is_whitespace() || is_letter(c) || is_number(c))
}

fn gpt2_split(text: &str, base: usize, out: &mut Vec<(usize, usize)>) {
    let cs: Vec<(usize, char)> = text.char_indices().collect();
    let n = cs.len();
    let off = |i: usize| if i < n { cs[i].0 } else { text.len() };
    let at = |i: usize| cs.get(i).map(|p| p.1);
    let mut pos = 0;
    while pos < n {
        let start = pos;
        let c = cs[pos].1;
        // 's 't 're 've 'm 'll 'd
        if c == '\'' {
            let c1 = at(pos + 1);
            if matches!(c1, Some('s' | 't' | 'm' | 'd')) {
                pos += 2;
                out.push((base + off(start), base + off(pos)));
                continue;
            }
            let c2 = at(pos + 2);
            if matches!(
                (c1, c2),
                (Some('r'), Some('e')) | (Some('v'), Some('e')) | (Some('l'), Some('l'))
            ) {
                pos += 3;
                out.push((base + off(start), base + off(pos)));
                continue;
            }
        }
        let lead = if c == ' ' { at(pos + 1) } else { Some(c) };
        let class: Option<fn(char) -> bool> = match lead {
            Some(l) if is_letter(l) => Some(is_letter),
            Some(l) if is_number(l) => Some(is_number),
            Some(l) if is_other(l) => Some(is_other),
            _ => None,
        };
        if let Some(class) = class {
            if c == ' ' {
                pos += 1;
            }
            while at(pos).is_some_and(class) {
                pos += 1;
            }
            out.push((base + off(start), base + off(pos)));
            continue;
        }
        let mut ws = 0;
        while at(pos + ws).is_some_and(char::is_whitespace) {
            ws += 1;
        }
        if ws > 1 && pos + ws < n {
            // \s+(?!\S): leave the last space to prefix the next word.
            pos += ws - 1;
        } else if ws > 0 {
            pos += ws;
        } else {
            pos += 1;
        }
        out.push((base + off(start), base + off(pos)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(p: PreTokenizer, s: &str) -> Vec<&str> {
        p.split(s).into_iter().map(|(a, b)| &s[a..b]).collect()
    }

    #[test]
    fn gpt2_pattern() {
        assert_eq!(
            pieces(PreTokenizer::Gpt2, "Hello world, it's 2024!  ok\n\nyes   "),
            [
                "Hello", " world", ",", " it", "'s", " 2024", "!", " ", " ok", "\n", "\n", "yes",
                "   "
            ]
        );
    }

    #[test]
    fn digits_split_first() {
        assert_eq!(
            pieces(PreTokenizer::DigitsThenGpt2, "a 123b"),
            ["a", " ", "1", "2", "3", "b"]
        );
    }
}
