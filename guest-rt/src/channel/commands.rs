//! The `ring` and `audit` shell commands (both guests).

use core::sync::atomic::{AtomicU8, Ordering};

use shared_ring::audit::AuditRecord;
use shared_ring::region::{self, RegionError};

use super::text::{write_audit_header, write_audit_record, write_ring};
use super::{audit, ctl, llm, shm};
use crate::shell::{parse_u64, Command, Invocation};

/// Which end of the channel this guest runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The control guest.
    Ctl = 1,
    /// The LLM guest.
    Llm = 2,
}

static ROLE: AtomicU8 = AtomicU8::new(0);

pub(crate) fn set_role(r: Role) {
    ROLE.store(r as u8, Ordering::Release);
}

/// The channel command table; add it to a guest's `Commands`.
pub static CHANNEL: [Command; 2] = [
    Command {
        name: "ring",
        help: "shared-ring counters of both directions as this guest sees them",
        run: ring,
    },
    Command {
        name: "audit",
        help:
            "audit [N] [ctl|llm|hv]: the newest N audit records (default 16, max 64), of one writer",
        run: audit_cmd,
    },
];

/// Default and largest record count of `audit`.
const AUDIT_DEFAULT: usize = 16;
const AUDIT_MAX: usize = 64;

fn header_status() -> &'static str {
    let Some(mem) = shm::ring_region() else {
        return "absent (native boot)";
    };
    match region::read_header(&mem) {
        Ok(_) => "ok",
        Err(RegionError::TooSmall) => "invalid: region too small",
        Err(RegionError::BadMagic(_)) => "invalid: bad magic (not initialised)",
        Err(RegionError::BadVersion(_)) => "invalid: unknown version",
        Err(RegionError::LengthMismatch { .. }) => "invalid: length mismatch",
        Err(RegionError::BadGeometry(why)) => why,
        Err(RegionError::BadIndices) => "invalid: bad indices",
    }
}

fn ring(inv: &mut Invocation<'_, '_>) {
    if inv.args.len() != 1 {
        let _ = writeln!(inv.out, "usage: ring");
        return;
    }
    let header = header_status();
    match ROLE.load(Ordering::Acquire) {
        1 => {
            let _ = write_ring(inv.out, &ctl::report(header));
            let (timeouts, stale, space) = ctl::ping_stats();
            let _ = writeln!(
                inv.out,
                "  ping: timeouts {timeouts} stale_pongs {stale} space_doorbells {space}"
            );
        }
        2 => {
            // A doorbell may have been missed while detached: look at the header now.
            llm::check_attach();
            let _ = write_ring(inv.out, &llm::report(header));
            let (header_errors, _) = llm::error_stats();
            let _ = writeln!(inv.out, "  attach: header_errors {header_errors}");
        }
        _ => {
            let _ = writeln!(inv.out, "ring: channel not started (header {header})");
        }
    }
}

fn audit_cmd(inv: &mut Invocation<'_, '_>) {
    let (n, writer) = match inv.args {
        [_] => (Some(AUDIT_DEFAULT as u64), None),
        [_, n] => (parse_u64(n), None),
        [_, n, w] => (parse_u64(n), Some(*w)),
        _ => {
            let _ = writeln!(inv.out, "usage: audit [N] [ctl|llm|hv]");
            return;
        }
    };
    let n = match n {
        Some(n) if (1..=AUDIT_MAX as u64).contains(&n) => n as usize,
        _ => {
            let _ = writeln!(inv.out, "audit: N must be 1..={AUDIT_MAX}");
            return;
        }
    };
    let writer = match writer {
        None => None,
        Some(w) => match super::text::vm_id(w) {
            Some(id) => Some(id),
            None => {
                let _ = writeln!(inv.out, "audit: unknown writer '{w}' (ctl, llm or hv)");
                return;
            }
        },
    };
    let mut recs = [AuditRecord::default(); AUDIT_MAX];
    let listing = audit::reader().map(|r| {
        let st = r.stats();
        let l = r.newest(|s| writer.is_none_or(|w| s.writer == w), &mut recs[..n]);
        (l, st)
    });
    match listing {
        Ok((listing, st)) => {
            let _ = write_audit_header(inv.out, &st, &listing);
            for r in &recs[..listing.count] {
                let _ = write_audit_record(inv.out, r);
            }
        }
        Err(e) => {
            let _ = writeln!(inv.out, "audit: {e}");
        }
    }
}
