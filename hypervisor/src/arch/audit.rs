//! The audit log: kept by the hypervisor in a region guests map read-only, appended to by
//! guests through `HV_AUDIT_APPEND` and by the hypervisor for its own events (VM start, fault).
//! The hypervisor stamps every record with the VM id, a sequence number and the time.

use aarch64_cpu::registers::{CNTFRQ_EL0, CNTPCT_EL0};
use shared_ring::audit::{AuditEntry, AuditError, AuditReader, AuditRecord, AuditWriter, Op};
use shared_ring::RawRegion;
use sis_platform::layout::phys;
use tock_registers::interfaces::Readable;

static WRITER: spin::Mutex<Option<AuditWriter<RawRegion<'static>>>> = spin::Mutex::new(None);

fn region() -> RawRegion<'static> {
    // SAFETY: the audit region is RAM reserved by the partition table for this log only; the
    // hypervisor maps it (identity, normal cacheable) for its whole life and guests map it
    // read-only; all access goes through `RawRegion`'s atomics.
    unsafe { RawRegion::new(phys::AUDIT_BASE as *mut u8, phys::AUDIT_SIZE as usize) }
        .expect("audit region is aligned")
}

/// Formats the log (core 0, at boot, before any guest runs).
pub fn init() {
    *WRITER.lock() = Some(AuditWriter::init(region()).expect("audit region holds records"));
}

/// Nanoseconds since boot from the system counter.
pub fn now_ns() -> u64 {
    let freq = CNTFRQ_EL0.get().max(1);
    (u128::from(CNTPCT_EL0.get()) * 1_000_000_000 / u128::from(freq)) as u64
}

/// Appends an entry for `vm` (or the hypervisor); returns its sequence number.
pub fn append(vm: u16, entry: &AuditEntry) -> Result<u64, AuditError> {
    match WRITER.lock().as_mut() {
        Some(w) => w.append(vm, now_ns(), entry),
        None => Err(AuditError::BadRegion("audit log not initialised")),
    }
}

/// Records a hypervisor event about `vm`.
pub fn event(vm: usize, op: Op, status: u16, extra: u64) {
    let e = AuditEntry {
        op: op as u16,
        status,
        extra,
        ..AuditEntry::default()
    };
    let _ = append(vm as u16, &e);
}

/// Copies the newest records (up to `out.len()`) for the monitor; returns how many and the
/// log's counters.
pub fn latest(out: &mut [AuditRecord]) -> (usize, shared_ring::audit::AuditStats) {
    let Ok(reader) = AuditReader::attach(region()) else {
        return (0, Default::default());
    };
    let stats = reader.stats();
    let from = (stats.write_seq + 1)
        .saturating_sub(out.len() as u64)
        .max(1);
    let batch = reader.read(from, out);
    (batch.count, stats)
}
