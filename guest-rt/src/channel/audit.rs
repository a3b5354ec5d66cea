//! The audit log from a guest: a typed append (`HV_AUDIT_APPEND`) and a reader of the log the
//! hypervisor maps read-only into every guest.

use core::sync::atomic::{AtomicU64, Ordering};

use shared_ring::audit::{AuditEntry, AuditReader, AuditRecord, AuditStats, Op, STATUS_REJECT};
use shared_ring::RawRegion;

use super::shm;
use crate::hypercall::{self, HvError};

static APPENDED: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);

/// Asks the hypervisor to append `entry` (it stamps VM id, time and sequence number). Returns the
/// record's sequence number. Counted either way.
///
/// # Errors
/// The hypercall's error: no hypervisor, or `InvalidParameter` for an unknown op or undefined
/// status bits (the hypervisor validates and counts it as invalid).
pub fn append(entry: &AuditEntry) -> Result<u64, HvError> {
    match hypercall::audit_append(entry.to_hypercall_args()) {
        Ok(seq) => {
            APPENDED.fetch_add(1, Ordering::Relaxed);
            Ok(seq)
        }
        Err(e) => {
            FAILED.fetch_add(1, Ordering::Relaxed);
            Err(e)
        }
    }
}

/// (appended, failed) since boot.
pub fn stats() -> (u64, u64) {
    (
        APPENDED.load(Ordering::Relaxed),
        FAILED.load(Ordering::Relaxed),
    )
}

/// Why the log cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// No audit region in this VM (native boot).
    NoRegion,
    /// The region's header is not valid.
    BadRegion(&'static str),
}

impl core::fmt::Display for ReadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReadError::NoRegion => f.write_str("no audit region (native boot)"),
            ReadError::BadRegion(why) => write!(f, "audit region invalid: {why}"),
        }
    }
}

/// A reader over the read-only log.
///
/// # Errors
/// [`ReadError`].
pub fn reader() -> Result<AuditReader<RawRegion<'static>>, ReadError> {
    let mem = shm::audit_region().ok_or(ReadError::NoRegion)?;
    AuditReader::attach(mem).map_err(|e| match e {
        shared_ring::audit::AuditError::BadRegion(why) => ReadError::BadRegion(why),
        _ => ReadError::BadRegion("unexpected error"),
    })
}

/// Copies the newest records (up to `out.len()`, oldest first) and returns how many, with the
/// log's counters.
///
/// # Errors
/// [`ReadError`].
pub fn latest(out: &mut [AuditRecord]) -> Result<(usize, AuditStats), ReadError> {
    let r = reader()?;
    let st = r.stats();
    let from = (st.write_seq + 1).saturating_sub(out.len() as u64).max(1);
    Ok((r.read(from, out).count, st))
}

/// Records one drain pass of a ring that rejected `count` slots (`ring_reject`, `extra` = count).
pub(crate) fn ring_rejects(count: u64) {
    if count > 0 {
        let _ = append(&AuditEntry {
            op: Op::RingReject as u16,
            status: STATUS_REJECT,
            extra: count,
            ..AuditEntry::default()
        });
    }
}
