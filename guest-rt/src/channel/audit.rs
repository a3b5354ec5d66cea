//! The audit log from a guest, the one audit API of both guests: a typed, counted append
//! (`HV_AUDIT_APPEND`; guest-ctl's control loop and guest-llm's service records go through
//! [`append`]) and the one reader of the log the hypervisor maps read-only into every guest (the
//! `audit` command, guest-ctl's `llmjson` and `status`, guest-llm's `llmjson` and `llmctl audit`
//! all read through [`reader`], [`for_each`] and [`write_json`]).

use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

use shared_ring::audit::{
    AuditEntry, AuditReader, AuditRecord, Listing, Op, SegmentInfo, STATUS_REJECT,
};
use shared_ring::RawRegion;

use super::shm;
use crate::hypercall::{self, HvError};

static APPENDED: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);

/// Asks the hypervisor to append `entry` (it stamps VM id, time and sequence number). Returns the
/// record's sequence number. Counted either way.
///
/// # Errors
/// The hypercall's error: no hypervisor, `InvalidParameter` for an unknown op or undefined
/// status bits, `Other(DENIED)` for an op only the hypervisor may record (the hypervisor counts
/// both and writes nothing).
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

/// Calls `f` with every record kept of the segments `select` accepts, merged by time, oldest
/// first; the listing counts the records lost (overwritten) in those segments.
///
/// # Errors
/// [`ReadError`].
pub fn for_each(
    select: impl Fn(&SegmentInfo) -> bool,
    f: impl FnMut(&AuditRecord),
) -> Result<Listing, ReadError> {
    Ok(reader()?.for_each(select, f))
}

/// Writes, as one JSON array (`[]` when there is none; the seed's field names, see
/// `shared_ring::audit::write_json`), the records of the segments `select` accepts that `keep`
/// keeps, merged by time, oldest first; with `last`, only the newest `last` of them. Returns
/// the listing of the selected segments (records lost to wrap-around).
///
/// # Errors
/// [`ReadError`], before anything is written.
pub fn write_json(
    mut out: &mut dyn Write,
    select: impl Fn(&SegmentInfo) -> bool,
    keep: impl Fn(&AuditRecord) -> bool,
    last: Option<u64>,
) -> Result<Listing, ReadError> {
    let reader = reader()?;
    let skip = match last {
        Some(n) => {
            let mut kept = 0u64;
            reader.for_each(&select, |r| kept += u64::from(keep(r)));
            kept.saturating_sub(n)
        }
        None => 0,
    };
    let (mut seen, mut first) = (0u64, true);
    let _ = out.write_char('[');
    let listing = reader.for_each(&select, |r| {
        if !keep(r) {
            return;
        }
        seen += 1;
        if seen <= skip {
            return;
        }
        if !first {
            let _ = out.write_char(',');
        }
        first = false;
        let _ = shared_ring::audit::write_json(r, &mut out);
    });
    let _ = out.write_str("]\n");
    Ok(listing)
}

/// Whether a segment holds this VM's own appends.
pub fn own_segment(s: &SegmentInfo) -> bool {
    u64::from(s.writer) == crate::boot_info().vm_id && s.subject == s.writer
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
