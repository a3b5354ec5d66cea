//! The SIS hypercall ABI (SMCCC, HVC conduit, vendor-specific hypervisor service range).
//!
//! A guest puts the function ID in `x0` and arguments in `x1..x6`, issues `hvc #0`, and gets the
//! result in `x0` (negative values are the SMCCC error codes below) and extra results in `x1..x3`.
//! PSCI calls (`0x8400_xxxx` / `0xC400_xxxx`) go through the same conduit and follow PSCI.

/// SMCCC owner number of the vendor-specific hypervisor service range.
pub const OWNER_VENDOR_HYP: u32 = 6;
/// Fast call, SMC64 calling convention, vendor hypervisor owner.
pub const VENDOR_HYP_BASE: u32 = 0xC600_0000;

/// Returns the ABI version: `x0 = (major << 16) | minor`.
pub const HV_VERSION: u32 = VENDOR_HYP_BASE;
/// Raises the doorbell virtual IRQ of the caller's channel to another VM (the partition table's
/// `Channel::doorbell`, `layout::irq::DOORBELL` for ctl-llm) in that VM. `x1` = target VM id,
/// a peer of one of the caller's channels. Returns 0 (raised, or already pending: doorbells coalesce and only a
/// newly pending doorbell kicks the target's core), `INVALID_PARAMETER`, `TARGET_STOPPED`, or
/// `RATE_LIMITED` (more than [`DOORBELL_RATE`] calls per second on average, bursts of
/// [`DOORBELL_BURST`]: nothing raised, counted; the peer still drains on its timer tick).
pub const HV_DOORBELL: u32 = VENDOR_HYP_BASE + 1;
/// Appends a record to the audit log. `x1..x5` = the entry packed as
/// `shared_ring::audit::AuditEntry::to_hypercall_args`. Returns the record's sequence number in
/// the caller's own segment (> 0), `INVALID_PARAMETER` (unknown op, undefined status bits,
/// reserved bits set) or `DENIED` (an op only the hypervisor records, such as `vm_start`);
/// refusals are counted, nothing is written.
pub const HV_AUDIT_APPEND: u32 = VENDOR_HYP_BASE + 2;
/// Returns `x0 = vm id`, `x1 = cpu mask`, `x2 = RAM size`.
pub const HV_VM_INFO: u32 = VENDOR_HYP_BASE + 3;

/// Reports another VM's state: `x1` = VM id; returns `x0` = 1 running / 0 stopped and
/// `x1` = how many times it was started (changes on every restart). Bad id: `INVALID_PARAMETER`.
pub const HV_VM_STATE: u32 = VENDOR_HYP_BASE + 4;

/// ABI version reported by [`HV_VERSION`].
pub const ABI_VERSION: u64 = 1 << 16;

/// SMCCC: success.
pub const SUCCESS: i64 = 0;
/// SMCCC: function not supported.
pub const NOT_SUPPORTED: i64 = -1;
/// SMCCC: call not required.
pub const NOT_REQUIRED: i64 = -2;
/// SMCCC: invalid parameter.
pub const INVALID_PARAMETER: i64 = -3;
/// SIS: the target VM of a doorbell is stopped (nothing was raised).
pub const TARGET_STOPPED: i64 = -4;
/// SIS: the caller may not do this (a guest appending an audit op reserved to the hypervisor).
pub const DENIED: i64 = -5;
/// SIS: the caller exceeded its rate limit (doorbells); nothing was done.
pub const RATE_LIMITED: i64 = -6;

/// Doorbell calls a VM may make per second on average (per calling VM, on the system counter).
/// Well above what the ring needs (a `ping` round trip rings once each way, about 40 000 per
/// second under emulation), far below what a loop of calls reaches.
pub const DOORBELL_RATE: u64 = 100_000;
/// Doorbell calls a VM may make at once after a quiet period.
pub const DOORBELL_BURST: u64 = 1024;
