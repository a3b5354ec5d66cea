//! JSON rendering of audit records (the seed's `llmjson` field names).

use super::AuditRecord;
use core::fmt::{self, Write};

/// Writes one record as a JSON object:
/// `{"op":3,"prompt_len":26,"tokens":4,"wcet_cycles":25000,"period_ns":0,"ts_ns":123,`
/// `"status":1,"vm":1,"seq":7,"extra":0}`.
///
/// # Errors
/// Only those of the writer.
pub fn write_json<W: Write>(r: &AuditRecord, w: &mut W) -> fmt::Result {
    let e = &r.entry;
    write!(
        w,
        "{{\"op\":{},\"prompt_len\":{},\"tokens\":{},\"wcet_cycles\":{},\"period_ns\":{},\
         \"ts_ns\":{},\"status\":{},\"vm\":{},\"seq\":{},\"extra\":{}}}",
        e.op,
        e.prompt_len,
        e.tokens,
        e.wcet_cycles,
        e.period_ns,
        r.ts_ns,
        e.status,
        r.vm_id,
        r.seq,
        e.extra
    )
}

/// Writes records as a JSON array (`[]` when empty), comma-separated, no whitespace.
///
/// # Errors
/// Only those of the writer.
pub fn write_json_array<'a, W: Write, I: IntoIterator<Item = &'a AuditRecord>>(
    records: I,
    w: &mut W,
) -> fmt::Result {
    w.write_char('[')?;
    for (i, r) in records.into_iter().enumerate() {
        if i > 0 {
            w.write_char(',')?;
        }
        write_json(r, w)?;
    }
    w.write_char(']')
}
