//! PSCI calls through the HVC conduit (the hypervisor implements them; natively QEMU does).

pub use smccc::psci::{AffinityState, Error};
use smccc::{psci, Hvc};

/// Starts core `target` (MPIDR) at physical `entry` with `context` in x0.
pub fn cpu_on(target: u64, entry: u64, context: u64) -> Result<(), Error> {
    psci::cpu_on::<Hvc>(target, entry, context)
}

/// Powers this core off. Only returns on failure.
pub fn cpu_off() -> Error {
    match psci::cpu_off::<Hvc>() {
        Ok(()) => Error::InternalFailure,
        Err(e) => e,
    }
}

/// Whether core `target` (MPIDR) is on, off or on its way.
pub fn affinity_info(target: u64) -> Result<AffinityState, Error> {
    psci::affinity_info::<Hvc>(target, psci::LowestAffinityLevel::All)
}

/// Powers the system (under the hypervisor: this VM) off. Only returns on failure.
pub fn system_off() -> Error {
    match psci::system_off::<Hvc>() {
        Ok(()) => Error::InternalFailure,
        Err(e) => e,
    }
}

/// Resets the system (under the hypervisor: restarts this VM). Only returns on failure.
pub fn system_reset() -> Error {
    match psci::system_reset::<Hvc>() {
        Ok(()) => Error::InternalFailure,
        Err(e) => e,
    }
}
