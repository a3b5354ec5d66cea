//! `status` (host-control counters) and `llmjson` (the audit log as JSON, every source) for
//! the `ctl>` shell.

use guest_rt::shell::{Command, Invocation};
use shared_ring::audit::{write_json, AuditReader, AuditRecord, Op};
use shared_ring::RawRegion;

use crate::hostctl::{CONTROL, VCON};
use crate::{dma, rng};

/// The status commands.
pub static COMMANDS: [Command; 2] = [
    Command {
        name: "status",
        help: "host control: frames, replies, errors, auth, backpressure, round trip p50/p99",
        run: status,
    },
    Command {
        name: "llmjson",
        help: "llmjson [--last N]: the audit log as JSON (all sources)",
        run: llmjson,
    },
];

/// A reader of the hypervisor's audit log through this VM's read-only mapping.
fn audit_reader() -> Result<AuditReader<RawRegion<'static>>, &'static str> {
    let info = guest_rt::boot_info();
    if info.audit_base == 0 || info.audit_size == 0 {
        return Err("no audit log (native boot)");
    }
    // SAFETY: the boot info names the audit region the hypervisor maps into this VM (read-only
    // at stage 2, normal cacheable memory at stage 1) for the life of the VM; nothing here makes
    // a Rust reference to it and the reader only loads words atomically.
    let region = unsafe { RawRegion::new(info.audit_base as *mut u8, info.audit_size as usize) }
        .map_err(|_| "audit region misaligned")?;
    AuditReader::attach(region).map_err(|_| "audit log header invalid")
}

/// Calls `f` for every record kept in the log, oldest first; returns records lost to wrap.
fn for_each_record(
    reader: &AuditReader<RawRegion<'static>>,
    from: u64,
    mut f: impl FnMut(&AuditRecord),
) -> u64 {
    let mut batch = [AuditRecord::default(); 32];
    let mut next = from;
    let mut lost = 0;
    loop {
        let r = reader.read(next, &mut batch);
        lost += r.lost;
        for rec in &batch[..r.count] {
            f(rec);
        }
        if r.count == 0 {
            return lost;
        }
        next = r.next_seq;
    }
}

fn llmjson(inv: &mut Invocation<'_, '_>) {
    let last = match inv.args.get(1..) {
        Some([]) | None => None,
        Some(["--last", n]) => match guest_rt::shell::parse_u64(n) {
            Some(n) => Some(n),
            None => {
                let _ = writeln!(inv.out, "llmjson: bad number '{n}'");
                return;
            }
        },
        Some(_) => {
            let _ = writeln!(inv.out, "usage: llmjson [--last N]");
            return;
        }
    };
    let reader = match audit_reader() {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(inv.out, "llmjson: {e}");
            return;
        }
    };
    let head = reader.stats().write_seq;
    let from = match last {
        Some(n) => head.saturating_sub(n) + 1,
        None => 0,
    };
    let _ = inv.out.write_char('[');
    let mut first = true;
    let mut out = &mut *inv.out;
    for_each_record(&reader, from, |rec| {
        if !first {
            let _ = out.write_char(',');
        }
        first = false;
        let _ = write_json(rec, &mut out);
    });
    let _ = writeln!(inv.out, "]");
}

fn status(inv: &mut Invocation<'_, '_>) {
    let out = &mut *inv.out;
    let vcon = VCON.lock();
    let c = CONTROL.lock();
    let s = c.stats();
    let d = c.decoder_stats();
    let errs: u64 = s.err.iter().sum();
    let _ = writeln!(
        out,
        "frames: rx={} tx={} ok={} err={} pending={} replayed={}",
        s.frames_rx,
        s.replies_tx,
        s.ok,
        errs,
        c.pending(),
        s.replayed
    );
    let _ = write!(out, "errors:");
    for (code, n) in s.err.iter().enumerate().filter(|(_, n)| **n > 0) {
        let _ = write!(out, " 0x{code:02x}={n}");
    }
    let _ = writeln!(out);
    match c.auth() {
        Some(a) => {
            let a = a.stats();
            let _ = writeln!(
                out,
                "auth: allowed={} failures={} bad_token={} rights={} rate_limited={} lockouts={} rotations={}",
                a.allowed,
                s.auth_failures,
                a.denied_bad_token,
                a.denied_rights,
                a.rate_limited,
                a.lockouts,
                a.rotations
            );
        }
        None => {
            let _ = writeln!(out, "auth: no secrets (failures={})", s.auth_failures);
        }
    }
    let (queued, tx_lines, tx_bytes, high, in_flight) =
        vcon.as_ref().map_or((0, 0, 0, 0, 0), |v| v.tx_state());
    let _ = writeln!(
        out,
        "backpressure: drops={} tx_line_drops={} tx_byte_drops={} fifo_busy={} extra_drops={} queued={} queued_max={} in_flight={}",
        s.tx_dropped + s.fifo_busy + s.extra_dropped,
        tx_lines,
        tx_bytes,
        s.fifo_busy,
        s.extra_dropped,
        queued,
        high,
        in_flight
    );
    let l = c.latency();
    let _ = writeln!(
        out,
        "rtt_us: p50={} p99={} max={} samples={}",
        l.percentile(50).unwrap_or(0),
        l.percentile(99).unwrap_or(0),
        l.max(),
        l.count()
    );
    let (ls, js, running) = crate::llm_link::LINK.lock().stats();
    let _ = writeln!(
        out,
        "llm: forwarded={} timeouts={} orphans={} sent={} unreachable={} ring_full={} responses={} unmatched={} forgotten={} stream_drops={}",
        s.forwarded,
        s.llm_timeouts,
        s.llm_orphans,
        ls.sent,
        ls.unreachable,
        ls.ring_full,
        crate::llm_link::responses(),
        ls.unmatched,
        ls.forgotten,
        ls.stream_drops
    );
    let _ = writeln!(
        out,
        "jobs: running={running} started={} evicted={} dropped_chunks={} unknown={}",
        js.started, js.evicted, js.dropped_chunks, js.unknown
    );
    let _ = writeln!(
        out,
        "decoder: requests={} bad_frame={} unsupported={} oversize={} garbage_bytes={} skipped_bytes={} abandoned_bytes={} abandoned={}",
        d.requests,
        d.bad_frame,
        d.unsupported,
        d.oversize,
        d.garbage_bytes,
        d.skipped_bytes,
        d.abandoned_bytes,
        s.abandoned
    );
    let _ = writeln!(
        out,
        "audit: allow={} deny={} appended={} failed={}",
        s.audit_allow, s.audit_deny, s.audit_ok, s.audit_failed
    );
    match vcon.as_ref() {
        Some(v) => {
            let _ = write!(
                out,
                "vcon: intid={} ticks={} ",
                crate::hostctl::intid().unwrap_or(0),
                crate::hostctl::ticks()
            );
            let (mp, ports, bound, host) = v.link();
            let st = v.stats();
            let _ = writeln!(
                out,
                "multiport={} ports={} bound={} host={} irqs={} rx_bytes={} tx_bytes={} other_port_bytes={} ctrl_rx={} ctrl_tx_failed={} queue_errors={}",
                u8::from(mp),
                ports,
                bound.map_or(-1, i64::from),
                u8::from(host),
                st.irqs,
                st.rx_bytes,
                st.tx_bytes,
                st.rx_other_bytes,
                st.ctrl_rx,
                st.ctrl_tx_failed,
                st.queue_errors
            );
        }
        None => {
            let _ = writeln!(out, "vcon: no device");
        }
    }
    drop(c);
    drop(vcon);
    let (used, pages, refused) = dma::stats();
    let (drawn, rng_err) = rng::stats();
    let _ = writeln!(
        out,
        "dma: pages={used}/{pages} refused={refused} rng: bytes={drawn} errors={rng_err}"
    );
    if let Ok(reader) = audit_reader() {
        let (mut allow, mut deny) = (0u64, 0u64);
        let vm = guest_rt::boot_info().vm_id as u16;
        let lost = for_each_record(&reader, 0, |r| {
            if r.vm_id == vm && r.entry.op == Op::CtlAllow as u16 {
                allow += 1;
            } else if r.vm_id == vm && r.entry.op == Op::CtlDeny as u16 {
                deny += 1;
            }
        });
        let st = reader.stats();
        let _ = writeln!(
            out,
            "audit_log: ctl_allow={allow} ctl_deny={deny} records={} overwritten={} lost={lost}",
            st.write_seq, st.overwritten
        );
    }
}
