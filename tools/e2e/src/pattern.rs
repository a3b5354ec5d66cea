//! What `expect` looks for: a plain substring or a regular expression, and what it returns.

use crate::error::{Error, Result};
use crate::source::Source;
use regex::bytes::Regex;
use std::fmt;

/// A pattern to wait for in a console view.
#[derive(Clone, Debug)]
pub enum Pattern {
    /// Matches the exact text.
    Substring(String),
    /// Matches a regular expression (byte-oriented, so invalid UTF-8 in the stream is harmless).
    /// `^` and `$` see the whole view, not just the unread part, so `(?m)^ctl> ` only matches a
    /// prompt at the start of a line.
    Regex(Regex),
}

impl Pattern {
    /// Compiles a regular-expression pattern; a bad expression gives [`Error::BadPattern`].
    pub fn regex(expr: &str) -> Result<Pattern> {
        Regex::new(expr)
            .map(Pattern::Regex)
            .map_err(|e| Error::BadPattern(format!("invalid regex /{expr}/: {e}")))
    }

    /// The pattern for `source`'s prompt at the start of a line (tolerating line breaks inserted
    /// by interruptions, see [`Pattern::split_tolerant`]).
    pub fn prompt(source: Source) -> Result<Pattern> {
        let prompt = source
            .prompt()
            .ok_or_else(|| Error::BadInput(format!("source {source} has no prompt")))?;
        Pattern::regex(&format!("(?m)^{}", split_tolerant_regex(prompt)))
    }

    /// Matches `text` even if line breaks were inserted between its characters (a partial line
    /// the hypervisor wrote early, such as a prompt or the echo of a command being typed, and
    /// that another console's line then ended, goes on under a new tag: see `parse.rs`).
    pub fn split_tolerant(text: &str) -> Result<Pattern> {
        Pattern::regex(&split_tolerant_regex(text))
    }

    /// Finds the first match that starts at or after `start` in `hay`.
    pub(crate) fn find_at(&self, hay: &[u8], start: usize) -> Option<Found> {
        match self {
            Pattern::Substring(needle) => {
                let needle = needle.as_bytes();
                let rest = hay.get(start..)?;
                let pos = if needle.is_empty() {
                    Some(0)
                } else {
                    rest.windows(needle.len()).position(|w| w == needle)
                }?;
                Some(Found {
                    start: start + pos,
                    end: start + pos + needle.len(),
                    groups: Vec::new(),
                    names: Vec::new(),
                })
            }
            Pattern::Regex(re) => {
                let caps = re.captures_at(hay, start)?;
                let whole = caps.get(0)?;
                let groups = caps
                    .iter()
                    .skip(1)
                    .map(|g| g.map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned()))
                    .collect();
                let names = re
                    .capture_names()
                    .skip(1)
                    .map(|n| n.map(str::to_owned))
                    .collect();
                Some(Found {
                    start: whole.start(),
                    end: whole.end(),
                    groups,
                    names,
                })
            }
        }
    }
}

/// A regex source for `text` with an optional `\n` between characters.
pub(crate) fn split_tolerant_regex(text: &str) -> String {
    let mut re = String::with_capacity(text.len() * 4);
    for (i, c) in text.chars().enumerate() {
        if i > 0 {
            re.push_str("\\n?");
        }
        re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
    }
    re
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Substring(s) => write!(f, "text {s:?}"),
            Pattern::Regex(re) => write!(f, "regex /{}/", re.as_str()),
        }
    }
}

impl From<&str> for Pattern {
    fn from(s: &str) -> Self {
        Pattern::Substring(s.to_owned())
    }
}

impl From<String> for Pattern {
    fn from(s: String) -> Self {
        Pattern::Substring(s)
    }
}

impl From<&String> for Pattern {
    fn from(s: &String) -> Self {
        Pattern::Substring(s.clone())
    }
}

impl From<Regex> for Pattern {
    fn from(re: Regex) -> Self {
        Pattern::Regex(re)
    }
}

/// A raw match position inside a view.
#[derive(Debug)]
pub(crate) struct Found {
    pub start: usize,
    pub end: usize,
    pub groups: Vec<Option<String>>,
    pub names: Vec<Option<String>>,
}

/// The result of a successful `expect`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    /// The source whose view matched.
    pub source: Source,
    /// The matched text.
    pub text: String,
    /// The text between the previous cursor position and the start of the match (for example a
    /// command's output when the pattern was the following prompt).
    pub before: String,
    /// Capture groups 1.. of a regex match (`None` for a group that did not take part); empty for
    /// substring matches.
    pub groups: Vec<Option<String>>,
    names: Vec<Option<String>>,
}

impl Match {
    pub(crate) fn new(source: Source, view: &[u8], cursor: usize, found: Found) -> Match {
        Match {
            source,
            text: String::from_utf8_lossy(&view[found.start..found.end]).into_owned(),
            before: String::from_utf8_lossy(&view[cursor..found.start]).into_owned(),
            groups: found.groups,
            names: found.names,
        }
    }

    /// Capture group `i` (1-based, as in regex syntax); `None` if absent or not matched.
    pub fn group(&self, i: usize) -> Option<&str> {
        self.groups.get(i.checked_sub(1)?)?.as_deref()
    }

    /// Named capture group `name`; `None` if absent or not matched.
    pub fn name(&self, name: &str) -> Option<&str> {
        let idx = self.names.iter().position(|n| n.as_deref() == Some(name))?;
        self.groups.get(idx)?.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substring_finds_after_start_only() {
        let p = Pattern::from("ab");
        let f = p.find_at(b"ab xab", 1).expect("second ab");
        assert_eq!((f.start, f.end), (4, 6));
        assert!(p.find_at(b"ab", 1).is_none());
        assert!(
            p.find_at(b"ab", 9).is_none(),
            "start beyond end is no match"
        );
    }

    #[test]
    fn regex_anchors_see_the_whole_view() {
        let p = Pattern::prompt(Source::Ctl).expect("valid");
        // Starting the search in the middle of "xctl> " must not treat it as a line start.
        assert!(p.find_at(b"xctl> ", 1).is_none());
        let f = p.find_at(b"out\nctl> ", 0).expect("prompt at line start");
        assert_eq!((f.start, f.end), (4, 9));
    }

    #[test]
    fn groups_and_names_are_returned() {
        let p = Pattern::regex(r"n=(?P<n>\d+)( done)?").expect("valid");
        let hay = b"tok n=42\n";
        let f = p.find_at(hay, 0).expect("match");
        let m = Match::new(Source::Llm, hay, 0, f);
        assert_eq!(m.text, "n=42");
        assert_eq!(m.before, "tok ");
        assert_eq!(m.group(1), Some("42"));
        assert_eq!(m.group(2), None);
        assert_eq!(m.group(0), None);
        assert_eq!(m.name("n"), Some("42"));
        assert_eq!(m.name("x"), None);
    }

    #[test]
    fn bad_regex_is_a_clear_error() {
        let e = Pattern::regex("a(").expect_err("unbalanced");
        assert!(e.to_string().contains("invalid regex /a(/"), "{e}");
    }

    #[test]
    fn split_tolerant_accepts_inserted_line_breaks_only() {
        let p = Pattern::split_tolerant("a.b c").expect("valid");
        for hay in ["a.b c", "a\n.b c", "a.b\n c", "a\n.\nb\n \nc"] {
            assert!(p.find_at(hay.as_bytes(), 0).is_some(), "{hay:?}");
        }
        for hay in ["axb c", "a.b\n\nc", "a.bc", "a\n\n.b c"] {
            assert!(p.find_at(hay.as_bytes(), 0).is_none(), "{hay:?}");
        }
        let prompt = Pattern::prompt(Source::Llm).expect("valid");
        assert!(prompt.find_at(b"x\nll\nm> ", 0).is_some());
        assert!(prompt.find_at(b"xllm> ", 0).is_none());
    }

    #[test]
    fn untagged_has_no_prompt() {
        assert!(Pattern::prompt(Source::Untagged).is_err());
    }
}
