//! `status` (host-control counters) and `llmjson` (the audit log as JSON, every source) for
//! the `ctl>` shell.

use guest_rt::channel::audit as log;
use guest_rt::shell::{Command, Invocation};
use shared_ring::audit::Op;

use crate::hostctl::{self, HostCtl};
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
    if let Err(e) = log::write_json(inv.out, |_| true, |_| true, last) {
        let _ = writeln!(inv.out, "llmjson: {e}");
    }
}

fn status(inv: &mut Invocation<'_, '_>) {
    let out = &mut *inv.out;
    hostctl::with(|h| host_status(out, h));
    let (used, pages, refused) = dma::stats();
    let (drawn, rng_err) = rng::stats();
    let _ = writeln!(
        out,
        "dma: pages={used}/{pages} refused={refused} rng: bytes={drawn} errors={rng_err}"
    );
    let (mut allow, mut deny) = (0u64, 0u64);
    let listing = log::for_each(log::own_segment, |r| {
        if r.entry.op == Op::CtlAllow as u16 {
            allow += 1;
        } else if r.entry.op == Op::CtlDeny as u16 {
            deny += 1;
        }
    });
    if let (Ok(l), Ok(reader)) = (listing, log::reader()) {
        let st = reader.stats();
        let _ = writeln!(
            out,
            "audit_log: ctl_allow={allow} ctl_deny={deny} records={} overwritten={} lost={}",
            st.write_seq, st.overwritten, l.lost
        );
    }
}

/// The lines about host control's own state (frames, errors, auth, backpressure, round trip,
/// LLM link, jobs, decoder, audit appends, console).
fn host_status(out: &mut dyn core::fmt::Write, h: &HostCtl) {
    let c = h.control().control();
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
        h.vcon().map_or((0, 0, 0, 0, 0), |v| v.tx_state());
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
    let (ls, js, running) = h.control().link_stats();
    let _ = writeln!(
        out,
        "llm: forwarded={} timeouts={} orphans={} sent={} unreachable={} ring_full={} responses={} unmatched={} forgotten={} stream_drops={}",
        s.forwarded,
        s.llm_timeouts,
        s.llm_orphans,
        ls.sent,
        ls.unreachable,
        ls.ring_full,
        ls.responses,
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
    match h.vcon() {
        Some(v) => {
            let _ = write!(
                out,
                "vcon: intid={} ticks={} ",
                h.intid().unwrap_or(0),
                h.ticks()
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
}
