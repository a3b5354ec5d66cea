//! Splits the physical UART byte stream into per-source text.
//!
//! Every physical line starts with a source tag (`[hv] `, `[ctl] `, `[llm] `). The tag may arrive
//! split across reads, so the parser holds back the first bytes of a line until the tag is known.
//! Content after the tag is handed out byte by byte as soon as it arrives, so a prompt (a partial
//! line without a newline) is visible at once. Carriage returns are dropped, so `\r\n` becomes
//! `\n` in the per-source text; the raw stream is kept elsewhere, unchanged.
//!
//! The hypervisor writes each guest's lines whole, so a physical line is one source's line. Only
//! a partial line it had to write early (a prompt or typing echo left idle, then another
//! source's line) is ended by the multiplexer and continued under a new tag; the parser keeps
//! that break (nothing marks it), and the waits that match prompts and echoed commands tolerate
//! it ([`crate::Pattern::split_tolerant`]).

use crate::source::Source;

/// What the parser knows about the physical line in progress.
#[derive(Debug)]
enum LineState {
    /// At the start of a line; these bytes may still turn out to be a tag.
    Start(Vec<u8>),
    /// Inside a line whose source is known.
    In(Source),
}

/// Counters about the physical stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParseStats {
    /// Completed physical lines per source, indexed by [`Source::index`].
    pub lines: [u64; 4],
    /// Physical lines that were empty (a bare `\n` at the start of a line). They carry no source
    /// and are not added to any view.
    pub empty_lines: u64,
    /// Carriage returns removed from per-source text.
    pub carriage_returns: u64,
}

/// Incremental parser of the tagged physical stream.
#[derive(Debug)]
pub struct LineParser {
    state: LineState,
    stats: ParseStats,
}

impl Default for LineParser {
    fn default() -> Self {
        Self::new()
    }
}

/// How the first bytes of a line relate to the known tags.
enum Classified {
    Tagged(Source),
    Undecided,
    Untagged,
}

fn classify(start: &[u8]) -> Classified {
    let mut maybe = false;
    for src in Source::TAGGED {
        let tag = src.tag().map(str::as_bytes).unwrap_or_default();
        if start.starts_with(tag) {
            return Classified::Tagged(src);
        }
        if tag.starts_with(start) {
            maybe = true;
        }
    }
    if maybe {
        Classified::Undecided
    } else {
        Classified::Untagged
    }
}

impl LineParser {
    /// A parser positioned at the start of a line.
    pub fn new() -> Self {
        LineParser {
            state: LineState::Start(Vec::new()),
            stats: ParseStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> ParseStats {
        self.stats
    }

    /// The source of the physical line in progress, if its tag has been seen.
    pub fn current_source(&self) -> Option<Source> {
        match self.state {
            LineState::In(src) => Some(src),
            LineState::Start(_) => None,
        }
    }

    /// Feeds raw bytes; `emit(source, bytes)` receives the per-source text in stream order.
    pub fn feed(&mut self, bytes: &[u8], mut emit: impl FnMut(Source, &[u8])) {
        for &b in bytes {
            if b == b'\r' {
                self.stats.carriage_returns += 1;
                continue;
            }
            match &mut self.state {
                LineState::In(src) => {
                    let src = *src;
                    emit(src, &[b]);
                    if b == b'\n' {
                        self.stats.lines[src.index()] += 1;
                        self.state = LineState::Start(Vec::new());
                    }
                }
                LineState::Start(pending) => {
                    if b == b'\n' {
                        if pending.is_empty() {
                            self.stats.empty_lines += 1;
                        } else {
                            // A line shorter than any tag that only looked like a tag's prefix.
                            emit(Source::Untagged, pending);
                            emit(Source::Untagged, b"\n");
                            self.stats.lines[Source::Untagged.index()] += 1;
                        }
                        pending.clear();
                        continue;
                    }
                    pending.push(b);
                    match classify(pending) {
                        Classified::Tagged(src) => self.state = LineState::In(src),
                        Classified::Undecided => {}
                        Classified::Untagged => {
                            emit(Source::Untagged, pending);
                            self.state = LineState::In(Source::Untagged);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` one by one and returns the text per source.
    fn parse(chunks: &[&[u8]]) -> ([String; 4], LineParser) {
        let mut p = LineParser::new();
        let mut out: [Vec<u8>; 4] = Default::default();
        for c in chunks {
            p.feed(c, |s, b| out[s.index()].extend_from_slice(b));
        }
        let text = out.map(|v| String::from_utf8(v).expect("test input is UTF-8"));
        (text, p)
    }

    #[test]
    fn tagged_lines_go_to_their_sources() {
        let (t, p) = parse(&[b"[hv] boot\n[ctl] hello\r\n[llm] world\n[ctl] ctl> "]);
        assert_eq!(t[Source::Hv.index()], "boot\n");
        assert_eq!(t[Source::Ctl.index()], "hello\nctl> ");
        assert_eq!(t[Source::Llm.index()], "world\n");
        assert_eq!(t[Source::Untagged.index()], "");
        assert_eq!(p.stats().lines, [1, 1, 1, 0]);
        assert_eq!(p.stats().carriage_returns, 1);
        assert_eq!(p.current_source(), Some(Source::Ctl));
    }

    #[test]
    fn an_interrupted_partial_line_keeps_its_break() {
        let input: &[u8] = b"[ctl] ctl> \r\n[llm] hello\r\n[ctl] help\r\n";
        let (whole, p) = parse(&[input]);
        assert_eq!(whole[Source::Ctl.index()], "ctl> \nhelp\n");
        assert_eq!(whole[Source::Llm.index()], "hello\n");
        assert_eq!(p.stats().lines, [0, 2, 1, 0]);
        for cut in 0..input.len() {
            let (split, _) = parse(&[&input[..cut], &input[cut..]]);
            assert_eq!(split, whole, "cut at {cut}");
        }
    }

    #[test]
    fn escape_bytes_are_content() {
        let (t, _) = parse(&[b"[llm] a\x1b[1mb\n[llm] c\x1b[0m\r\n"]);
        assert_eq!(t[Source::Llm.index()], "a\x1b[1mb\nc\x1b[0m\n");
    }

    #[test]
    fn tags_split_across_reads_are_recognised() {
        let (t, _) = parse(&[b"[c", b"t", b"l] ab", b"c\n[", b"llm", b"] x"]);
        assert_eq!(t[Source::Ctl.index()], "abc\n");
        assert_eq!(t[Source::Llm.index()], "x");
    }

    #[test]
    fn every_byte_split_gives_the_same_result() {
        let input: &[u8] = b"[hv] a\n[llm] bb\nnoise\n[ctl] ctl> x\n[x] y\n[ct\n";
        let (whole, _) = parse(&[input]);
        for cut in 0..input.len() {
            let (split, _) = parse(&[&input[..cut], &input[cut..]]);
            assert_eq!(split, whole, "cut at {cut}");
        }
        assert_eq!(whole[Source::Untagged.index()], "noise\n[x] y\n[ct\n");
    }

    #[test]
    fn untagged_and_empty_lines_are_counted() {
        let (t, p) = parse(&[b"QEMU says hi\n\n\n[hv] ok\n"]);
        assert_eq!(t[Source::Untagged.index()], "QEMU says hi\n");
        assert_eq!(t[Source::Hv.index()], "ok\n");
        assert_eq!(p.stats().empty_lines, 2);
        assert_eq!(p.stats().lines[Source::Untagged.index()], 1);
    }

    #[test]
    fn a_tag_in_the_middle_of_a_line_is_content() {
        let (t, _) = parse(&[b"[ctl] see [llm] here\n"]);
        assert_eq!(t[Source::Ctl.index()], "see [llm] here\n");
        assert_eq!(t[Source::Llm.index()], "");
    }

    #[test]
    fn partial_tag_is_held_back_until_decided() {
        let mut p = LineParser::new();
        let mut seen = Vec::new();
        p.feed(b"[ll", |s, b| seen.push((s, b.to_vec())));
        assert!(seen.is_empty(), "undecided tag must not be emitted");
        assert_eq!(p.current_source(), None);
        p.feed(b"m] z", |s, b| seen.push((s, b.to_vec())));
        assert_eq!(seen, vec![(Source::Llm, b"z".to_vec())]);
    }
}
