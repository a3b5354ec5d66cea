//! Isolation probes: what a compromised guest would do to the shared audit log, the doorbell and
//! the console, as shell commands (both guests), so the system tests can show each is contained.
//!
//! * `auditforge`: appends records with the hypervisor's own ops (`vm_start`, `vm_fault`); the
//!   hypervisor must refuse them (`DENIED`).
//! * `auditflood [N]`: appends N records as fast as it can; the other writers' records must stay.
//! * `doorbellflood [N]`: rings the peer's doorbell N times in a loop; the rate limit must refuse
//!   most and the ring must keep working.
//! * `printraw`: prints bytes meant to fool a terminal (a carriage return and a fake tag, colour,
//!   window title, a cursor-position query, an 8-bit CSI, backspaces over the tag); the
//!   hypervisor must show them escaped under this guest's tag.

use shared_ring::audit::{AuditEntry, Op, STATUS_OK, STATUS_REJECT};
use sis_platform::hypercall::{DENIED, RATE_LIMITED};

use super::console::write_raw;
use super::hypercall::{self, HvError};
use crate::shell::{parse_u64, Command, Invocation};

/// The probe command table.
pub static PROBES: [Command; 4] = [
    Command {
        name: "auditforge",
        help: "try to append audit records with the hypervisor's ops (vm_start, vm_fault)",
        run: auditforge,
    },
    Command {
        name: "auditflood",
        help: "auditflood [N]: append N audit records as fast as possible (default 20000)",
        run: auditflood,
    },
    Command {
        name: "doorbellflood",
        help: "doorbellflood [N]: ring the peer's doorbell N times in a loop (default 200000)",
        run: doorbellflood,
    },
    Command {
        name: "printraw",
        help: "print terminal control bytes (CR, ESC sequences, DSR, fake tag, backspaces) raw",
        run: printraw,
    },
];

const FLOOD_DEFAULT: u64 = 20_000;
const FLOOD_MAX: u64 = 10_000_000;
const DOORBELL_DEFAULT: u64 = 200_000;

/// `[N]` with a default and a bound; prints the usage and returns `None` on a bad argument.
fn count_arg(inv: &mut Invocation<'_, '_>, default: u64) -> Option<u64> {
    let name = inv.args.first().copied().unwrap_or("?");
    match inv.args {
        [_] => Some(default),
        [_, n] => match parse_u64(n) {
            Some(n) if (1..=FLOOD_MAX).contains(&n) => Some(n),
            _ => {
                let _ = writeln!(inv.out, "{name}: N must be 1..={FLOOD_MAX}");
                None
            }
        },
        _ => {
            let _ = writeln!(inv.out, "usage: {name} [N]");
            None
        }
    }
}

fn outcome(r: Result<u64, HvError>) -> &'static str {
    match r {
        Ok(_) => "APPENDED (forged)",
        Err(HvError::Other(DENIED)) => "refused: DENIED",
        Err(HvError::InvalidParameter) => "refused: INVALID_PARAMETER",
        Err(_) => "refused: other error",
    }
}

fn auditforge(inv: &mut Invocation<'_, '_>) {
    for (op, status) in [
        (Op::VmStart, STATUS_OK),
        (Op::VmFault, STATUS_REJECT),
        (Op::DmaFault, STATUS_REJECT),
    ] {
        let e = AuditEntry {
            op: op as u16,
            status,
            extra: 0xF0F0_F0F0,
            ..AuditEntry::default()
        };
        let r = hypercall::audit_append(e.to_hypercall_args());
        let _ = writeln!(
            inv.out,
            "auditforge: op={}({}) {}",
            op as u16,
            op.name(),
            outcome(r)
        );
    }
}

fn auditflood(inv: &mut Invocation<'_, '_>) {
    let Some(n) = count_arg(inv, FLOOD_DEFAULT) else {
        return;
    };
    let (mut ok, mut failed) = (0u64, 0u64);
    for i in 0..n {
        let e = AuditEntry {
            op: Op::Cancel as u16,
            status: STATUS_REJECT,
            extra: i,
            ..AuditEntry::default()
        };
        match hypercall::audit_append(e.to_hypercall_args()) {
            Ok(_) => ok += 1,
            Err(_) => failed += 1,
        }
    }
    let _ = writeln!(inv.out, "auditflood: {ok} appended, {failed} failed");
}

fn doorbellflood(inv: &mut Invocation<'_, '_>) {
    let Some(n) = count_arg(inv, DOORBELL_DEFAULT) else {
        return;
    };
    let peer = if crate::boot_info().vm_id == 0 { 1 } else { 0 };
    let (mut ok, mut limited, mut other) = (0u64, 0u64, 0u64);
    for _ in 0..n {
        match hypercall::doorbell(peer) {
            Ok(()) => ok += 1,
            Err(HvError::Other(RATE_LIMITED)) => limited += 1,
            Err(_) => other += 1,
        }
    }
    let _ = writeln!(
        inv.out,
        "doorbellflood: {n} calls, {ok} accepted, {limited} rate-limited, {other} other errors"
    );
}

fn printraw(inv: &mut Invocation<'_, '_>) {
    let tag = if crate::boot_info().vm_id == 0 {
        "[llm] "
    } else {
        "[ctl] "
    };
    let _ = writeln!(inv.out, "printraw: begin");
    // Whole lines, each on its own so the tests can find them.
    let mut spoof = [0u8; 64];
    let mut n = 0;
    for &b in b"\rSPOOF1 "
        .iter()
        .chain(tag.as_bytes())
        .chain(b"forged line\n")
    {
        spoof[n] = b;
        n += 1;
    }
    write_raw(&spoof[..n]);
    write_raw(b"SPOOF2 \x1b[31mred\x1b[0m colour\n");
    write_raw(b"SPOOF3 \x1b]0;pwned title\x07 title\n");
    write_raw(b"SPOOF4 \x1b[6n dsr\n");
    write_raw(b"SPOOF5 \xc2\x9b31m c1 csi \x9b raw\n");
    write_raw(b"SPOOF6 crlf line\r\n");
    write_raw(
        b"SPOOF7 \x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08 backspaces\n",
    );
    write_raw(b"SPOOF8 del \x7f bell \x07 nul \x00 end\n");
    let _ = writeln!(inv.out, "printraw: end");
}
