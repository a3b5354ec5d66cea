//! The EL1 runtime shared by the SIS guests.
//!
//! Pure logic (line editor, argument splitting, command tables, output formats, the receive
//! ring, page-table descriptors) builds and is unit tested on the host. The hardware edge (boot,
//! MMU, exception vectors, GICv3, generic timer, PL011, heap, PSCI, secondary cores) only exists
//! when built for `aarch64-unknown-none`.
//!
//! A guest binary provides its name and entry point with [`entry!`]; the runtime boots the core,
//! brings up every device, prints the boot line and calls the entry point with the
//! [`BootInfo`](sis_platform::BootInfo).
#![cfg_attr(not(test), no_std)]

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
extern crate alloc;

pub use shared_ring;
pub use sis_platform;

pub mod bootcheck;
pub mod channel;
pub mod hook;
pub mod pagetable;
pub mod probe;
pub mod report;
pub mod ring;
pub mod shell;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod hw;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub use hw::*;

/// What a guest tells the runtime about itself.
#[derive(Clone, Copy, Debug)]
pub struct GuestConfig {
    /// Name used in the boot line when no hypervisor gave one (`ctl`, `llm`).
    pub name: &'static str,
    /// Without the hypervisor: whether every core in the device tree belongs to this guest
    /// (otherwise only the boot core does).
    pub native_all_cores: bool,
}

/// Declares the guest's configuration and entry point: `entry!(CONFIG, main)` where
/// `main: fn(&'static BootInfo) -> !`.
#[macro_export]
macro_rules! entry {
    ($config:expr, $main:path) => {
        /// Read by the runtime before calling the entry point.
        #[no_mangle]
        pub static __SIS_GUEST_CONFIG: $crate::GuestConfig = $config;

        /// Called by the runtime on the boot core once every device is up.
        #[no_mangle]
        pub fn __sis_guest_main(info: &'static $crate::sis_platform::BootInfo) -> ! {
            let main: fn(&'static $crate::sis_platform::BootInfo) -> ! = $main;
            main(info)
        }
    };
}
