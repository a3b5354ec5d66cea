//! Escaping of text inside reply lines.
//!
//! | byte                          | written as |
//! |-------------------------------|------------|
//! | `\`                           | `\\`       |
//! | `\|`                          | `\|`       |
//! | LF, CR, TAB                   | `\n`, `\r`, `\t` |
//! | space                         | literal in a tail field (`items=`, `tok=`), `\x20` inline |
//! | other `0x21..=0x7e`           | literal    |
//! | anything else (controls, DEL, bytes ≥ 0x80) | `\xHH` (lowercase hex) |
//!
//! Escaping bytes ≥ 0x80 keeps every line pure ASCII and lets the host rebuild exact token
//! bytes, even when a model token holds half of a multi-byte UTF-8 character.

/// Escape one byte; returns the escaped bytes in a small array and their count.
pub(crate) fn escape_byte(b: u8, tail: bool) -> ([u8; 4], usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'\\' => ([b'\\', b'\\', 0, 0], 2),
        b'|' => ([b'\\', b'|', 0, 0], 2),
        b'\n' => ([b'\\', b'n', 0, 0], 2),
        b'\r' => ([b'\\', b'r', 0, 0], 2),
        b'\t' => ([b'\\', b't', 0, 0], 2),
        b' ' if tail => ([b' ', 0, 0, 0], 1),
        0x21..=0x7e => ([b, 0, 0, 0], 1),
        _ => (
            [
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ],
            4,
        ),
    }
}

/// Length of `bytes` once escaped (`tail`: spaces stay literal).
pub fn escaped_len(bytes: &[u8], tail: bool) -> usize {
    bytes.iter().map(|&b| escape_byte(b, tail).1).sum()
}

/// Error in escaped text received from the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnescapeError {
    /// `\` followed by something that is not an escape.
    BadEscape,
    /// The text ends inside an escape.
    Truncated,
    /// A byte that must have been escaped appears raw.
    RawByte(u8),
    /// The output buffer is too small.
    BufferTooSmall,
}

/// Escaped text borrowed from a reply line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Escaped<'a>(pub(crate) &'a [u8]);

impl<'a> Escaped<'a> {
    /// Wrap wire text.
    pub const fn new(raw: &'a [u8]) -> Self {
        Escaped(raw)
    }

    /// The text as it appeared on the wire.
    pub fn raw(&self) -> &'a [u8] {
        self.0
    }

    /// An iterator over the unescaped bytes.
    pub fn unescape(&self) -> Unescape<'a> {
        Unescape { rest: self.0 }
    }

    /// Check the text unescapes cleanly.
    pub fn validate(&self) -> Result<(), UnescapeError> {
        self.unescape().try_for_each(|r| r.map(|_| ()))
    }

    /// Unescape into `out`; returns the byte count.
    pub fn unescape_into(&self, out: &mut [u8]) -> Result<usize, UnescapeError> {
        let mut n = 0;
        for b in self.unescape() {
            let b = b?;
            *out.get_mut(n).ok_or(UnescapeError::BufferTooSmall)? = b;
            n += 1;
        }
        Ok(n)
    }
}

/// Iterator over unescaped bytes; yields an error (and then stops) on bad input.
#[derive(Clone, Debug)]
pub struct Unescape<'a> {
    rest: &'a [u8],
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl Iterator for Unescape<'_> {
    type Item = Result<u8, UnescapeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&b, tail) = self.rest.split_first()?;
        self.rest = tail;
        let out = match b {
            b'\\' => {
                let (&e, tail) = match self.rest.split_first() {
                    Some(x) => x,
                    None => return self.fail(UnescapeError::Truncated),
                };
                self.rest = tail;
                match e {
                    b'\\' => b'\\',
                    b'|' => b'|',
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'x' => {
                        let (hi, lo) = match self.rest {
                            [h, l, ..] => (*h, *l),
                            _ => return self.fail(UnescapeError::Truncated),
                        };
                        self.rest = &self.rest[2..];
                        match (hex_digit(hi), hex_digit(lo)) {
                            (Some(h), Some(l)) => (h << 4) | l,
                            _ => return self.fail(UnescapeError::BadEscape),
                        }
                    }
                    _ => return self.fail(UnescapeError::BadEscape),
                }
            }
            b' ' | 0x21..=0x7e if b != b'|' => b,
            other => return self.fail(UnescapeError::RawByte(other)),
        };
        Some(Ok(out))
    }
}

impl Unescape<'_> {
    fn fail(&mut self, e: UnescapeError) -> Option<Result<u8, UnescapeError>> {
        self.rest = &[];
        Some(Err(e))
    }
}
