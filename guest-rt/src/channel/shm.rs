//! The two memory regions the hypervisor maps into both guests, as `RawRegion`s.

use shared_ring::RawRegion;

use crate::boot_info;

/// The shared ring region, or `None` without one (native boot).
pub(crate) fn ring_region() -> Option<RawRegion<'static>> {
    let b = boot_info();
    if b.shared_base == 0 || b.shared_size == 0 {
        return None;
    }
    // SAFETY: the hypervisor maps [shared_base, +shared_size) into this guest as read-write
    // normal memory for the VM's whole life (stage 2), and the runtime's stage-1 map covers it
    // as normal cacheable memory; no Rust reference to it is ever created, every access goes
    // through RawRegion's atomics. Base and length come from the boot-info block and are
    // checked for alignment by `RawRegion::new`.
    unsafe { RawRegion::new(b.shared_base as *mut u8, b.shared_size as usize) }.ok()
}

/// The audit log region (read-only: only ever read through `AuditReader`), or `None`.
pub(crate) fn audit_region() -> Option<RawRegion<'static>> {
    let b = boot_info();
    if b.audit_base == 0 || b.audit_size == 0 {
        return None;
    }
    // SAFETY: as above, except that the hypervisor maps the log read-only: it is only handed to
    // `AuditReader`, which performs atomic loads and never stores, so nothing writes through it.
    unsafe { RawRegion::new(b.audit_base as *mut u8, b.audit_size as usize) }.ok()
}
