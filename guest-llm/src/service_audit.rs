//! The LLM service's audit records: appended to the hypervisor's log with `HV_AUDIT_APPEND`
//! and read back from the read-only audit region for `llmctl audit` and `llmjson`.
//! Prompt text is never logged, only its length in tokens.

use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

use guest_rt::channel::audit as log;
use guest_rt::hypercall;
use shared_ring::audit::{self, AuditEntry, AuditRecord, Op};
use sis_platform::BootInfo;

/// Appends that failed (no hypervisor, or refused).
static FAILED: AtomicU64 = AtomicU64::new(0);
/// Appends that succeeded.
static APPENDED: AtomicU64 = AtomicU64::new(0);

/// Appends `entry`; a failure is counted (the operation itself is not undone).
pub fn record(entry: AuditEntry) {
    match hypercall::audit_append(entry.to_hypercall_args()) {
        Ok(_) => APPENDED.fetch_add(1, Ordering::Relaxed),
        Err(_) => FAILED.fetch_add(1, Ordering::Relaxed),
    };
}

/// (records appended, appends failed).
pub fn counts() -> (u64, u64) {
    (
        APPENDED.load(Ordering::Relaxed),
        FAILED.load(Ordering::Relaxed),
    )
}

/// Whether `op` is one of the LLM service's operations (load, budget, infer, stream, cancel).
pub fn is_llm_op(op: u16) -> bool {
    matches!(
        Op::from_code(op),
        Some(Op::Load | Op::Budget | Op::Infer | Op::Stream | Op::Cancel)
    )
}

/// Calls `f` with every record of this VM's LLM operations still in the log (its own segment:
/// nobody else can write there), oldest first. Returns the number of this VM's records lost to
/// wrap-around before they could be read (a reader sees the gap in its sequence numbers).
pub fn for_each_llm_record(
    _info: &BootInfo,
    mut f: impl FnMut(&AuditRecord),
) -> Result<u64, log::ReadError> {
    let l = log::for_each(log::own_segment, |rec| {
        if is_llm_op(rec.entry.op) {
            f(rec);
        }
    })?;
    Ok(l.lost)
}

/// Prints the records as one JSON array (`[]` when there is none).
pub fn print_json(info: &BootInfo, mut out: &mut dyn Write) {
    let mut first = true;
    let _ = out.write_char('[');
    let res = for_each_llm_record(info, |r| {
        if !first {
            let _ = out.write_char(',');
        }
        first = false;
        let _ = audit::write_json(r, &mut out);
    });
    let _ = writeln!(out, "]");
    if let Err(e) = res {
        let _ = writeln!(out, "llmjson: {e}");
    }
}

/// Prints the records as text, one per line.
pub fn print_text(info: &BootInfo, out: &mut dyn Write) {
    let mut n = 0;
    let res = for_each_llm_record(info, |r| {
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
        Ok(lost) => {
            let (ok, failed) = counts();
            let _ = writeln!(
                out,
                "llm audit: {n} records, {lost} lost to wrap-around, appended {ok}, append failures {failed}"
            );
        }
        Err(e) => {
            let _ = writeln!(out, "llmctl audit: {e}");
        }
    }
}
