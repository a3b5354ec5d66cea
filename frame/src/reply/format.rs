//! Formatting reply lines into a caller-supplied buffer (no allocation).

use super::escape::{escape_byte, escaped_len};
use super::{EndReason, ErrorCode};

/// Why a line could not be formatted. Nothing useful is left in the buffer on error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// The line does not fit in the buffer.
    Overflow,
    /// A field key is empty or not `[a-z0-9_]`.
    BadKey,
}

/// A field value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// Decimal number.
    U64(u64),
    /// A byte as `0xNN`.
    Hex(u8),
    /// Text, escaped (inline: spaces become `\x20`).
    Text(&'a [u8]),
}

/// One `key=value` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    /// Key, `[a-z0-9_]+`.
    pub key: &'a str,
    /// Value.
    pub value: Value<'a>,
}

impl<'a> Field<'a> {
    /// A numeric field.
    pub const fn num(key: &'a str, v: u64) -> Self {
        Field {
            key,
            value: Value::U64(v),
        }
    }
    /// A text field.
    pub const fn text(key: &'a str, v: &'a [u8]) -> Self {
        Field {
            key,
            value: Value::Text(v),
        }
    }
}

struct Line<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Line<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), FormatError> {
        let end = self.at + bytes.len();
        self.out
            .get_mut(self.at..end)
            .ok_or(FormatError::Overflow)?
            .copy_from_slice(bytes);
        self.at = end;
        Ok(())
    }
    fn put_u64(&mut self, v: u64) -> Result<(), FormatError> {
        let mut digits = [0u8; 20];
        let n = fmt_u64(v, &mut digits);
        self.put(&digits[20 - n..])
    }
    fn put_hex(&mut self, v: u8) -> Result<(), FormatError> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.put(&[
            b'0',
            b'x',
            HEX[usize::from(v >> 4)],
            HEX[usize::from(v & 0xf)],
        ])
    }
    fn put_escaped(&mut self, bytes: &[u8], tail: bool) -> Result<(), FormatError> {
        for &b in bytes {
            let (e, n) = escape_byte(b, tail);
            self.put(&e[..n])?;
        }
        Ok(())
    }
    fn put_field(&mut self, f: &Field<'_>) -> Result<(), FormatError> {
        if f.key.is_empty()
            || !f
                .key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(FormatError::BadKey);
        }
        self.put(b" ")?;
        self.put(f.key.as_bytes())?;
        self.put(b"=")?;
        match f.value {
            Value::U64(v) => self.put_u64(v),
            Value::Hex(v) => self.put_hex(v),
            Value::Text(t) => self.put_escaped(t, false),
        }
    }
    fn finish(mut self) -> Result<usize, FormatError> {
        self.put(b"\n")?;
        Ok(self.at)
    }
}

/// Decimal digits of `v` right-aligned in `buf`; returns how many.
fn fmt_u64(mut v: u64, buf: &mut [u8; 20]) -> usize {
    let mut n = 0;
    loop {
        buf[19 - n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            return n;
        }
    }
}

fn digits(v: u64) -> usize {
    let mut buf = [0u8; 20];
    fmt_u64(v, &mut buf)
}

/// `OK[ key=value]*\n`. Returns the line length.
pub fn write_ok(out: &mut [u8], fields: &[Field<'_>]) -> Result<usize, FormatError> {
    let mut l = Line { out, at: 0 };
    l.put(b"OK")?;
    for f in fields {
        l.put_field(f)?;
    }
    l.finish()
}

/// `ERR 0xNN[ key=value]*\n`. Returns the line length.
pub fn write_err(
    out: &mut [u8],
    code: ErrorCode,
    fields: &[Field<'_>],
) -> Result<usize, FormatError> {
    let mut l = Line { out, at: 0 };
    l.put(b"ERR ")?;
    l.put_hex(code as u8)?;
    for f in fields {
        l.put_field(f)?;
    }
    l.finish()
}

/// Header fields of a poll reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollInfo<'a> {
    /// Inference id.
    pub id: u32,
    /// The inference has finished and these are its last tokens.
    pub done: bool,
    /// How it ended (with the error code of a failure), written with `done=1`:
    /// ` end=<reason>[ code=0xNN]`.
    pub end: Option<(EndReason, Option<ErrorCode>)>,
    /// Prompt length in bytes.
    pub plen: u32,
    /// Model name.
    pub model: &'a [u8],
}

/// What [`write_poll`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollWritten {
    /// Line length in bytes.
    pub len: usize,
    /// How many items (from the front) fit; the caller keeps the rest for the next poll.
    pub items: usize,
}

/// `OK TOK id= n= done=[ end=[ code=]] plen= model= items=a|b|c\n` with as many leading items as fit in
/// `out`. `n` is the number of items written; `done=1` only if `info.done` and every item fit
/// (so a host never sees `done=1` while tokens are still held back). Fails only if not even
/// zero items fit.
pub fn write_poll<'i, I>(
    out: &mut [u8],
    info: &PollInfo<'_>,
    items: I,
) -> Result<PollWritten, FormatError>
where
    I: IntoIterator<Item = &'i [u8]>,
    I::IntoIter: Clone,
{
    let items = items.into_iter();
    let end_len = match info.end {
        Some((r, code)) => {
            " end=".len() + r.as_str().len() + code.map_or(0, |_| " code=0xNN".len())
        }
        None => 0,
    };
    // Length without the `n` digits and without items (the end fields are counted, so a
    // reply that fits with them also fits without).
    let fixed = end_len
        + "OK TOK id=".len()
        + digits(u64::from(info.id))
        + " n=".len()
        + " done=0 plen=".len()
        + digits(u64::from(info.plen))
        + " model=".len()
        + escaped_len(info.model, false)
        + " items=".len()
        + 1;
    let mut fit = 0usize;
    let mut total_items = 0usize;
    let mut body = 0usize;
    // Zero items need `fixed` plus the one digit of `n=0`.
    let mut fits = fixed < out.len();
    for (k, item) in items.clone().enumerate() {
        total_items = k + 1;
        if !fits {
            continue;
        }
        body += escaped_len(item, true) + usize::from(k > 0);
        if fixed + digits((k + 1) as u64) + body <= out.len() {
            fit = k + 1;
        } else {
            fits = false;
        }
    }
    let mut l = Line { out, at: 0 };
    l.put(b"OK TOK id=")?;
    l.put_u64(u64::from(info.id))?;
    l.put(b" n=")?;
    l.put_u64(fit as u64)?;
    let done = info.done && fit == total_items;
    l.put(if done { b" done=1" } else { b" done=0" })?;
    if let (true, Some((reason, code))) = (done, info.end) {
        l.put(b" end=")?;
        l.put(reason.as_str().as_bytes())?;
        if let Some(c) = code {
            l.put(b" code=")?;
            l.put_hex(c as u8)?;
        }
    }
    l.put(b" plen=")?;
    l.put_u64(u64::from(info.plen))?;
    l.put(b" model=")?;
    l.put_escaped(info.model, false)?;
    l.put(b" items=")?;
    for (k, item) in items.take(fit).enumerate() {
        if k > 0 {
            l.put(b"|")?;
        }
        l.put_escaped(item, true)?;
    }
    let len = l.finish()?;
    Ok(PollWritten { len, items: fit })
}

/// `STREAM id=<id> i=<i> tok=<esc>\n`: one token of a streamed inference.
pub fn write_stream_token(
    out: &mut [u8],
    id: u32,
    i: u32,
    tok: &[u8],
) -> Result<usize, FormatError> {
    let mut l = Line { out, at: 0 };
    l.put(b"STREAM id=")?;
    l.put_u64(u64::from(id))?;
    l.put(b" i=")?;
    l.put_u64(u64::from(i))?;
    l.put(b" tok=")?;
    l.put_escaped(tok, true)?;
    l.finish()
}

/// `END id=<id> n=<n> reason=<r>[ code=0xNN][ prompt=<p> reused=<r>]\n`: the last line of a
/// streamed inference; `prefill` = (prompt tokens, of which reused from a conversation's
/// KV cache) for a conversation turn.
pub fn write_end(
    out: &mut [u8],
    id: u32,
    n: u32,
    reason: EndReason,
    code: Option<ErrorCode>,
    prefill: Option<(u32, u32)>,
) -> Result<usize, FormatError> {
    let mut l = Line { out, at: 0 };
    l.put(b"END id=")?;
    l.put_u64(u64::from(id))?;
    l.put(b" n=")?;
    l.put_u64(u64::from(n))?;
    l.put(b" reason=")?;
    l.put(reason.as_str().as_bytes())?;
    if let Some(c) = code {
        l.put(b" code=")?;
        l.put_hex(c as u8)?;
    }
    if let Some((prompt, reused)) = prefill {
        l.put(b" prompt=")?;
        l.put_u64(u64::from(prompt))?;
        l.put(b" reused=")?;
        l.put_u64(u64::from(reused))?;
    }
    l.finish()
}
