//! The LLM service's audit records, through the runtime's audit API
//! (`guest_rt::channel::audit`): appended with `HV_AUDIT_APPEND`, read back from the read-only
//! audit region for `llmctl audit` and `llmjson`. Prompt text is never logged, only its length in
//! tokens.

use core::fmt::Write;

use guest_rt::channel::audit as log;
use shared_ring::audit::{self, AuditEntry, AuditRecord, Op, STATUS_OK, STATUS_REJECT};

/// Appends `entry`; a failure is counted by the runtime (the operation itself is not undone).
pub fn record(entry: AuditEntry) {
    let _ = log::append(&entry);
}

/// Appends `entry` with the reject bit (a refused or failed operation).
pub fn reject(entry: AuditEntry) {
    record(AuditEntry {
        status: STATUS_REJECT,
        ..entry
    });
}

/// Appends `entry` with the ok bit if `ok`, the reject bit otherwise.
pub fn outcome(entry: AuditEntry, ok: bool) {
    if ok {
        record(AuditEntry {
            status: STATUS_OK,
            ..entry
        });
    } else {
        reject(entry);
    }
}

/// Whether `op` is one of the LLM service's operations (load, budget, infer, stream, cancel).
pub fn is_llm_op(op: u16) -> bool {
    matches!(
        Op::from_code(op),
        Some(Op::Load | Op::Budget | Op::Infer | Op::Stream | Op::Cancel)
    )
}

/// Whether `rec` is one of this service's records (it is in this VM's own segment: nobody else
/// can write there).
fn is_llm_record(rec: &AuditRecord) -> bool {
    is_llm_op(rec.entry.op)
}

/// Prints this VM's LLM records as one JSON array (`[]` when there is none).
pub fn print_json(out: &mut dyn Write) {
    if let Err(e) = log::write_json(out, log::own_segment, is_llm_record, None) {
        let _ = writeln!(out, "[]");
        let _ = writeln!(out, "llmjson: {e}");
    }
}

/// Prints this VM's LLM records as text, one per line, then how many there are, how many were
/// lost to wrap-around before they could be read (a reader sees the gap in its sequence
/// numbers) and the appends counted since boot.
pub fn print_text(out: &mut dyn Write) {
    let mut n = 0;
    let res = log::for_each(log::own_segment, |r| {
        if !is_llm_record(r) {
            return;
        }
        n += 1;
        let e = &r.entry;
        let name = Op::from_code(e.op).map_or("?", Op::name);
        let _ = writeln!(
            out,
            "seq={} ts_ns={} op={}({}) status=0b{:03b}{}{}{} prompt_len={} tokens={} \
             wcet_cycles={} period_ns={} extra={}",
            r.seq,
            r.ts_ns,
            e.op,
            name,
            e.status,
            if e.status & audit::STATUS_OK != 0 {
                " ok"
            } else {
                ""
            },
            if e.status & audit::STATUS_REJECT != 0 {
                " reject"
            } else {
                ""
            },
            if e.status & audit::STATUS_DEADLINE_MISS != 0 {
                " deadline_miss"
            } else {
                ""
            },
            e.prompt_len,
            e.tokens,
            e.wcet_cycles,
            e.period_ns,
            e.extra
        );
    });
    match res {
        Ok(l) => {
            let (ok, failed) = log::stats();
            let _ = writeln!(
                out,
                "llm audit: {n} records, {} lost to wrap-around, appended {ok}, append failures {failed}",
                l.lost
            );
        }
        Err(e) => {
            let _ = writeln!(out, "llmctl audit: {e}");
        }
    }
}
