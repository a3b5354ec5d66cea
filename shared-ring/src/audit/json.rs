//! JSON rendering of audit records (the seed's `llmjson` field names).

use super::AuditRecord;
use core::fmt::{self, Write};

/// Writes one record as a JSON object:
/// `{"op":3,"prompt_len":26,"tokens":4,"wcet_cycles":25000,"period_ns":0,"ts_ns":123,`
/// `"status":1,"vm":1,"writer":1,"seq":7,"extra":0}` (`vm` = the subject, `writer` = who
/// appended it, 65535 for the hypervisor; `seq` counts within the writer's segment).
///
/// # Errors
/// Only those of the writer.
pub fn write_json<W: Write>(r: &AuditRecord, w: &mut W) -> fmt::Result {
    let e = &r.entry;
    write!(
        w,
        "{{\"op\":{},\"prompt_len\":{},\"tokens\":{},\"wcet_cycles\":{},\"period_ns\":{},\
         \"ts_ns\":{},\"status\":{},\"vm\":{},\"writer\":{},\"seq\":{},\"extra\":{}}}",
        e.op,
        e.prompt_len,
        e.tokens,
        e.wcet_cycles,
        e.period_ns,
        r.ts_ns,
        e.status,
        r.vm_id,
        r.writer,
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

/// A record as one line of text, for the monitor's and the guests' `audit` listings:
/// `#5 by=ctl t=1234ns vm=ctl op=12(ring_ping) status=0b001 prompt_len=0 tokens=1000 wcet=0
/// period=0 extra=0x3e8`: the sequence number in the writer's segment, the writer, then the
/// subject. `name` gives the caller's name for a VM id ([`super::VM_HYPERVISOR`] included).
pub struct Text<'a>(pub &'a AuditRecord, pub fn(u16) -> &'static str);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (r, e) = (self.0, &self.0.entry);
        write!(
            f,
            "#{} by={} t={}ns vm={} op={}({}) status={:#05b} prompt_len={} tokens={} wcet={} period={} extra={:#x}",
            r.seq,
            (self.1)(r.writer),
            r.ts_ns,
            (self.1)(r.vm_id),
            e.op,
            super::Op::from_code(e.op).map_or("?", super::Op::name),
            e.status,
            e.prompt_len,
            e.tokens,
            e.wcet_cycles,
            e.period_ns,
            e.extra
        )
    }
}
