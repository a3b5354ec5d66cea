//! SIS hypercalls (SMCCC vendor-hypervisor range, HVC conduit; numbers in
//! `sis_platform::hypercall`). Only available under the hypervisor: natively an unknown HVC
//! would be undefined, so every call checks first.

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use sis_platform::hypercall as hc;

static PRESENT: AtomicBool = AtomicBool::new(false);

pub(crate) fn set_present(present: bool) {
    PRESENT.store(present, Ordering::Release);
}

/// Whether the guest runs under the SIS hypervisor (it found a valid boot-info block).
pub fn hypervisor_present() -> bool {
    PRESENT.load(Ordering::Acquire)
}

/// Why a hypercall failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HvError {
    /// Running without the hypervisor.
    NoHypervisor,
    /// SMCCC NOT_SUPPORTED.
    NotSupported,
    /// SMCCC INVALID_PARAMETER.
    InvalidParameter,
    /// Any other negative status.
    Other(i64),
}

impl fmt::Display for HvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HvError::NoHypervisor => f.write_str("no hypervisor (native boot)"),
            HvError::NotSupported => f.write_str("hypercall not supported"),
            HvError::InvalidParameter => f.write_str("hypercall rejected an argument"),
            HvError::Other(e) => write!(f, "hypercall failed with status {e}"),
        }
    }
}

/// Issues hypercall `function` with `args` in x1..x6; returns x0..x3 when x0 is not negative.
pub fn call(function: u32, args: [u64; 6]) -> Result<[u64; 4], HvError> {
    if !hypervisor_present() {
        return Err(HvError::NoHypervisor);
    }
    let mut full = [0u64; 17];
    full[..6].copy_from_slice(&args);
    let r = smccc::hvc64(function, full);
    match r[0] as i64 {
        s if s >= 0 => Ok([r[0], r[1], r[2], r[3]]),
        hc::NOT_SUPPORTED => Err(HvError::NotSupported),
        hc::INVALID_PARAMETER => Err(HvError::InvalidParameter),
        s => Err(HvError::Other(s)),
    }
}

/// ABI version `(major << 16) | minor`.
pub fn version() -> Result<u64, HvError> {
    call(hc::HV_VERSION, [0; 6]).map(|r| r[0])
}

/// Raises the doorbell interrupt in VM `target`.
pub fn doorbell(target: u64) -> Result<(), HvError> {
    call(hc::HV_DOORBELL, [target, 0, 0, 0, 0, 0]).map(|_| ())
}

/// Appends an audit record (the five record words, see shared-ring's audit docs).
pub fn audit_append(words: [u64; 5]) -> Result<u64, HvError> {
    let [a, b, c, d, e] = words;
    call(hc::HV_AUDIT_APPEND, [a, b, c, d, e, 0]).map(|r| r[0])
}

/// Whether VM `id` runs, and its generation (how many times it was started).
pub fn vm_state(id: u64) -> Result<(bool, u64), HvError> {
    call(hc::HV_VM_STATE, [id, 0, 0, 0, 0, 0]).map(|r| (r[0] == 1, r[1]))
}

/// (VM id, core mask, RAM size) as the hypervisor sees this VM.
pub fn vm_info() -> Result<(u64, u64, u64), HvError> {
    call(hc::HV_VM_INFO, [0; 6]).map(|r| (r[0], r[1], r[2]))
}
