//! SIS hypervisor: an EL2 type-1 hypervisor for QEMU `virt` that statically partitions cores and
//! memory between guests (see `sis_platform::partition`).
//!
//! This binary is the hardware edge (`arch/`, built only for `target_os = "none"`); the logic it
//! drives lives in the `hypervisor` library (`src/lib.rs`), which is tested on the host.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod arch;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the hypervisor runs on aarch64-unknown-none-softfloat: use scripts/build.sh");
}
