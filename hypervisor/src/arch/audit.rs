//! The audit log: kept by the hypervisor in a region guests map read-only. Each guest appends to
//! its own segment through `HV_AUDIT_APPEND`; the hypervisor records its own events (VM start,
//! fault, ...) as writer `hv` in a segment per subject VM. The hypervisor stamps every record with
//! writer, subject, a per-segment sequence number and the time.

use aarch64_cpu::registers::{CNTFRQ_EL0, CNTPCT_EL0};
use shared_ring::audit::{
    standard_segments, AuditEntry, AuditError, AuditReader, AuditRecord, AuditStats, AuditWriter,
    Op, SegmentStats, MAX_SEGMENTS, VM_HYPERVISOR,
};
use shared_ring::RawRegion;
use sis_platform::layout::phys;
use sis_platform::partition::PARTITIONS;
use tock_registers::interfaces::Readable;

static WRITER: spin::Mutex<Option<AuditWriter<RawRegion<'static>>>> = spin::Mutex::new(None);

fn region() -> RawRegion<'static> {
    // SAFETY: the audit region is RAM reserved by the partition table for this log only; the
    // hypervisor maps it (identity, normal cacheable) for its whole life and guests map it
    // read-only; all access goes through `RawRegion`'s atomics.
    unsafe { RawRegion::new(phys::AUDIT_BASE as *mut u8, phys::AUDIT_SIZE as usize) }
        .expect("audit region is aligned")
}

/// Formats the log (core 0, at boot, before any guest runs): one segment per VM, one per VM for
/// the hypervisor's records about it, one for the hypervisor's records about itself.
pub fn init() {
    let segs = standard_segments(PARTITIONS.len());
    *WRITER.lock() = Some(AuditWriter::init(region(), &segs).expect("audit region holds records"));
}

/// Nanoseconds since boot from the system counter.
pub fn now_ns() -> u64 {
    let freq = CNTFRQ_EL0.get().max(1);
    (u128::from(CNTPCT_EL0.get()) * 1_000_000_000 / u128::from(freq)) as u64
}

fn append(writer: u16, subject: u16, entry: &AuditEntry) -> Result<u64, AuditError> {
    // The time is read under the lock, so time stamps follow the append order.
    match WRITER.lock().as_mut() {
        Some(w) => w.append(writer, subject, now_ns(), entry),
        None => Err(AuditError::BadRegion("audit log not initialised")),
    }
}

/// Appends a guest's entry to its own segment; returns its sequence number there.
///
/// # Errors
/// [`AuditError::Forbidden`] for an op only the hypervisor may record, or an invalid entry (both
/// counted in the VM's segment, nothing written).
pub fn guest_append(vm: usize, entry: &AuditEntry) -> Result<u64, AuditError> {
    append(vm as u16, vm as u16, entry)
}

/// Counts a guest's append refused before it reached the log (reserved hypercall bits, bad op or
/// status) in its segment's `invalid`.
pub fn guest_invalid(vm: usize) {
    if let Some(w) = WRITER.lock().as_mut() {
        w.count_invalid(vm as u16, vm as u16);
    }
}

/// Records a hypervisor event about `vm` (writer: the hypervisor, subject: `vm`).
pub fn event(vm: usize, op: Op, status: u16, extra: u64) {
    let e = AuditEntry {
        op: op as u16,
        status,
        extra,
        ..AuditEntry::default()
    };
    let _ = append(VM_HYPERVISOR, vm as u16, &e);
}

/// What the monitor's `audit` shows.
pub struct Snapshot {
    /// Totals.
    pub stats: AuditStats,
    /// Per segment, in layout order (`segments` of them are valid).
    pub segments: [SegmentStats; MAX_SEGMENTS],
    /// How many segments.
    pub nsegs: usize,
    /// Records missing inside the listed span (rewritten while being read).
    pub lost: u64,
    /// Records copied into the caller's buffer.
    pub count: usize,
}

/// Copies the newest records of every segment (up to `out.len()`, merged by time) for the
/// monitor, with the counters.
pub fn latest(out: &mut [AuditRecord]) -> Option<Snapshot> {
    let reader = AuditReader::attach(region()).ok()?;
    let mut segments = [SegmentStats::default(); MAX_SEGMENTS];
    let nsegs = reader.segments().len();
    for (k, s) in segments.iter_mut().enumerate().take(nsegs) {
        *s = reader.segment_stats(k);
    }
    let l = reader.newest(|_| true, out);
    Some(Snapshot {
        stats: reader.stats(),
        segments,
        nsegs,
        lost: l.lost,
        count: l.count,
    })
}
