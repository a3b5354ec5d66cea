//! guest-ctl: the control guest kernel. Boots on core 0 under the hypervisor (or natively on
//! QEMU), then runs the `ctl>` shell. Services (virtio-console, frames, tokens) come later, each
//! in its own module.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

#[cfg(target_os = "none")]
mod kernel {
    use guest_rt::commands::COMMON;
    use guest_rt::diag::DIAG;
    use guest_rt::shell::Commands;
    use guest_rt::GuestConfig;
    use sis_platform::BootInfo;

    /// Every command of the `ctl>` shell.
    static COMMANDS: Commands = Commands::new(&[&COMMON, &DIAG]);

    fn main(_info: &'static BootInfo) -> ! {
        guest_rt::shell::run("ctl> ", &COMMANDS)
    }

    guest_rt::entry!(
        GuestConfig {
            name: "ctl",
            native_all_cores: false
        },
        main
    );
}
