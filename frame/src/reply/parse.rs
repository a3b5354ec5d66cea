//! Zero-copy parser of reply lines, for the host.

use super::escape::Escaped;
use super::EndReason;

/// Why a reply line could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The line is empty.
    Empty,
    /// A newline or carriage return inside the line.
    EmbeddedNewline,
    /// The first word is not `OK`, `ERR`, `STREAM` or `END`.
    UnknownKind,
    /// The line does not follow the grammar; the text names the offending part.
    Malformed(&'static str),
}

impl core::fmt::Display for ParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ParseError::Empty => f.write_str("empty reply line"),
            ParseError::EmbeddedNewline => f.write_str("line break inside a reply line"),
            ParseError::UnknownKind => {
                f.write_str("reply does not start with OK, ERR, STREAM or END")
            }
            ParseError::Malformed(what) => write!(f, "malformed reply: {what}"),
        }
    }
}

/// A parsed reply line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `OK[ key=value]*`.
    Ok(Fields<'a>),
    /// `ERR 0xNN[ key=value]*`; `code` may be one this build does not know.
    Err {
        /// The error code byte.
        code: u8,
        /// Extra fields.
        fields: Fields<'a>,
    },
    /// `OK TOK ...`.
    Poll(Poll<'a>),
    /// `STREAM id= i= tok=`.
    Stream {
        /// Inference id.
        id: u32,
        /// Token index (0-based).
        i: u32,
        /// The token text.
        tok: Escaped<'a>,
    },
    /// `END id= n= reason=[ code=]`.
    End {
        /// Inference id.
        id: u32,
        /// Tokens produced.
        n: u32,
        /// Why it ended.
        reason: EndReason,
        /// Error code for `reason=fail`.
        code: Option<u8>,
        /// For a conversation turn: (prompt tokens, of which reused from the KV cache).
        prefill: Option<(u32, u32)>,
    },
}

/// A poll reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Poll<'a> {
    /// Inference id.
    pub id: u32,
    /// Items in this reply.
    pub n: u32,
    /// The inference is finished and every token has been delivered.
    pub done: bool,
    /// With `done`: how it ended (`end=`), if the guest said.
    pub end: Option<EndReason>,
    /// With `end=fail`: the error code (`code=0xNN`).
    pub code: Option<u8>,
    /// Prompt length in bytes.
    pub plen: u32,
    /// Model name.
    pub model: Escaped<'a>,
    /// The items (already checked to be exactly `n` valid escaped texts).
    pub items: Items<'a>,
}

/// `key=value` fields after the first word(s) of an `OK`/`ERR` line (already validated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fields<'a> {
    raw: &'a [u8],
}

impl<'a> Fields<'a> {
    /// Iterate over `(key, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], Escaped<'a>)> + 'a {
        self.raw
            .split(|&b| b == b' ')
            .filter(|w| !w.is_empty())
            .filter_map(|w| {
                let eq = w.iter().position(|&b| b == b'=')?;
                Some((&w[..eq], Escaped::new(&w[eq + 1..])))
            })
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<Escaped<'a>> {
        self.iter()
            .find(|(k, _)| *k == key.as_bytes())
            .map(|(_, v)| v)
    }

    /// The value of `key` as a decimal number, if present and numeric.
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        parse_dec(self.get(key)?.raw())
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// Iterator over the items of a poll reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Items<'a> {
    rest: &'a [u8],
    left: u32,
}

impl<'a> Iterator for Items<'a> {
    type Item = Escaped<'a>;

    fn next(&mut self) -> Option<Escaped<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let end = item_end(self.rest);
        let item = &self.rest[..end];
        self.rest = self.rest.get(end + 1..).unwrap_or(&[]);
        Some(Escaped::new(item))
    }
}

/// Index of the first unescaped `|` (or the length).
fn item_end(s: &[u8]) -> usize {
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'|' => return i,
            _ => i += 1,
        }
    }
    s.len()
}

fn parse_dec(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || (s.len() > 1 && s[0] == b'0') {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

fn parse_hex_code(s: &[u8]) -> Option<u8> {
    match s {
        [b'0', b'x', h, l] => {
            let d = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
            Some((d(*h)? << 4) | d(*l)?)
        }
        _ => None,
    }
}

/// Consume `key=` then a value up to the next space; returns the value and the rest (after
/// the space, if any).
fn take_field<'a>(s: &'a [u8], key: &'static str) -> Result<(&'a [u8], &'a [u8]), ParseError> {
    let s = s
        .strip_prefix(key.as_bytes())
        .and_then(|s| s.strip_prefix(b"="))
        .ok_or(ParseError::Malformed(key))?;
    match s.iter().position(|&b| b == b' ') {
        Some(sp) => Ok((&s[..sp], &s[sp + 1..])),
        None => Ok((s, &[])),
    }
}

fn take_u32<'a>(s: &'a [u8], key: &'static str) -> Result<(u32, &'a [u8]), ParseError> {
    let (v, rest) = take_field(s, key)?;
    let n = parse_dec(v)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or(ParseError::Malformed(key))?;
    Ok((n, rest))
}

/// Tail field: `key=` then everything to the end of the line.
fn take_tail<'a>(s: &'a [u8], key: &'static str) -> Result<&'a [u8], ParseError> {
    s.strip_prefix(key.as_bytes())
        .and_then(|s| s.strip_prefix(b"="))
        .ok_or(ParseError::Malformed(key))
}

fn check_fields(raw: &[u8]) -> Result<Fields<'_>, ParseError> {
    if raw.is_empty() {
        return Ok(Fields { raw });
    }
    let body = raw
        .strip_prefix(b" ")
        .ok_or(ParseError::Malformed("fields"))?;
    for w in body.split(|&b| b == b' ') {
        let eq = w
            .iter()
            .position(|&b| b == b'=')
            .ok_or(ParseError::Malformed("field without '='"))?;
        let key = &w[..eq];
        if key.is_empty()
            || !key
                .iter()
                .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(ParseError::Malformed("field key"));
        }
        Escaped::new(&w[eq + 1..])
            .validate()
            .map_err(|_| ParseError::Malformed("field value escape"))?;
    }
    Ok(Fields { raw })
}

/// Parse one reply line (with or without its trailing `\n`).
pub fn parse_reply(line: &[u8]) -> Result<Reply<'_>, ParseError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    if line.iter().any(|&b| b == b'\n' || b == b'\r') {
        return Err(ParseError::EmbeddedNewline);
    }
    if let Some(rest) = line.strip_prefix(b"OK TOK ") {
        return parse_poll(rest).map(Reply::Poll);
    }
    if let Some(rest) = line.strip_prefix(b"OK") {
        return check_fields(rest).map(Reply::Ok);
    }
    if let Some(rest) = line.strip_prefix(b"ERR ") {
        let (code, rest) = rest
            .split_at_checked(4)
            .ok_or(ParseError::Malformed("code"))?;
        let code = parse_hex_code(code).ok_or(ParseError::Malformed("code"))?;
        return Ok(Reply::Err {
            code,
            fields: check_fields(rest)?,
        });
    }
    if let Some(rest) = line.strip_prefix(b"STREAM ") {
        let (id, rest) = take_u32(rest, "id")?;
        let (i, rest) = take_u32(rest, "i")?;
        let tok = Escaped::new(take_tail(rest, "tok")?);
        tok.validate().map_err(|_| ParseError::Malformed("tok"))?;
        return Ok(Reply::Stream { id, i, tok });
    }
    if let Some(rest) = line.strip_prefix(b"END ") {
        let (id, rest) = take_u32(rest, "id")?;
        let (n, rest) = take_u32(rest, "n")?;
        let (reason, rest) = take_field(rest, "reason")?;
        let reason = EndReason::from_wire(reason).ok_or(ParseError::Malformed("reason"))?;
        let (code, rest) = if rest.starts_with(b"code=") {
            let (c, rest) = take_field(rest, "code")?;
            (
                Some(parse_hex_code(c).ok_or(ParseError::Malformed("code"))?),
                rest,
            )
        } else {
            (None, rest)
        };
        let prefill = if rest.is_empty() {
            None
        } else {
            let (prompt, rest) = take_u32(rest, "prompt")?;
            let (reused, rest) = take_u32(rest, "reused")?;
            if !rest.is_empty() {
                return Err(ParseError::Malformed("trailing data after reused"));
            }
            Some((prompt, reused))
        };
        return Ok(Reply::End {
            id,
            n,
            reason,
            code,
            prefill,
        });
    }
    Err(ParseError::UnknownKind)
}

fn parse_poll(rest: &[u8]) -> Result<Poll<'_>, ParseError> {
    let (id, rest) = take_u32(rest, "id")?;
    let (n, rest) = take_u32(rest, "n")?;
    let (done, rest) = take_field(rest, "done")?;
    let done = match done {
        b"0" => false,
        b"1" => true,
        _ => return Err(ParseError::Malformed("done")),
    };
    let (end, rest) = if rest.starts_with(b"end=") {
        let (r, rest) = take_field(rest, "end")?;
        let r = EndReason::from_wire(r).ok_or(ParseError::Malformed("end"))?;
        if !done {
            return Err(ParseError::Malformed("end without done=1"));
        }
        (Some(r), rest)
    } else {
        (None, rest)
    };
    let (code, rest) = if end.is_some() && rest.starts_with(b"code=") {
        let (c, rest) = take_field(rest, "code")?;
        (
            Some(parse_hex_code(c).ok_or(ParseError::Malformed("code"))?),
            rest,
        )
    } else {
        (None, rest)
    };
    let (plen, rest) = take_u32(rest, "plen")?;
    let (model, rest) = take_field(rest, "model")?;
    let model = Escaped::new(model);
    model
        .validate()
        .map_err(|_| ParseError::Malformed("model"))?;
    let items_raw = take_tail(rest, "items")?;
    // Check there are exactly n well-formed items.
    let mut count = 0u32;
    if n == 0 {
        if !items_raw.is_empty() {
            return Err(ParseError::Malformed("items present but n=0"));
        }
    } else {
        let mut s = items_raw;
        loop {
            let end = item_end(s);
            Escaped::new(&s[..end])
                .validate()
                .map_err(|_| ParseError::Malformed("items escape"))?;
            count += 1;
            if end == s.len() {
                break;
            }
            s = &s[end + 1..];
        }
        if count != n {
            return Err(ParseError::Malformed("item count differs from n"));
        }
    }
    Ok(Poll {
        id,
        n,
        done,
        end,
        code,
        plen,
        model,
        items: Items {
            rest: items_raw,
            left: n,
        },
    })
}
