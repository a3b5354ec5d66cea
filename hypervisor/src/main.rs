//! SIS hypervisor: an EL2 type-1 hypervisor for QEMU `virt` that statically partitions cores and
//! memory between guests (see `sis_platform::partition`).
//!
//! The platform-independent logic (console multiplexer, emulated devices, stage-2 builder, ELF
//! loader, syndrome decoding, monitor parsing) compiles and is unit-tested on the host; the
//! hardware edge is built only for `target_os = "none"`.
#![cfg_attr(target_os = "none", no_std, no_main)]

pub mod access;
pub mod console;
pub mod el2map;
pub mod elf;
pub mod esr;
pub mod monitor;
pub mod pci;
pub mod ratelimit;
pub mod smmu;
pub mod stage2;
pub mod sysreg;
pub mod systrap;
pub mod vgic;
pub mod vuart;

#[cfg(target_os = "none")]
mod arch;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the hypervisor runs on aarch64-unknown-none-softfloat: use scripts/build.sh");
}
