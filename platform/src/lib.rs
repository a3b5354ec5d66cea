//! The one home for every constant of the SIS platform: QEMU `virt` addresses and INTIDs, the
//! guest-physical (IPA) layout every guest sees, the hypercall numbers, the boot-info block the
//! hypervisor hands each guest, and the static partition table, which describes the whole system
//! (VMs, shared regions, channels, the work core, consoles, images), with its build-time
//! validation.
//!
//! Everything here is plain data, usable on the host (tests, tools) and on the target (the
//! hypervisor and both guests), so no address or interrupt number is written twice.
#![no_std]

pub mod bootinfo;
pub mod hypercall;
pub mod layout;
pub mod partition;

pub use bootinfo::BootInfo;
pub use partition::{validate, ConfigError, System, VmConfig, PARTITIONS, SYSTEM};
