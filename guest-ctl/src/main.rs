//! guest-ctl: the control guest kernel, which faces the host: it serves `datactl` frames on its
//! virtio-console (tokens, forwarding LLM work through the ring to guest-llm) and the `ctl>`
//! shell. Boots on the core the partition table gives it (or natively on QEMU).
#![cfg_attr(target_os = "none", no_std, no_main)]
// Host builds compile the pure modules for their tests only.
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

// Host control (docs/control.md): pure logic, host tested...
mod control;
mod jobs;
mod latency;
mod txbuf;
mod vcon_proto;
// ...and its hardware edge.
#[cfg(target_os = "none")]
mod attack_cmds;
#[cfg(target_os = "none")]
mod channel_cmds;
#[cfg(target_os = "none")]
mod dma;
#[cfg(target_os = "none")]
mod hostctl;
#[cfg(target_os = "none")]
mod llm_link;
#[cfg(target_os = "none")]
mod rng;
#[cfg(target_os = "none")]
mod status_cmds;
#[cfg(target_os = "none")]
mod tokens_cmds;
#[cfg(target_os = "none")]
mod vcon;
#[cfg(target_os = "none")]
mod virtio;

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
    static COMMANDS: Commands = Commands::new(&[
        &COMMON,
        &crate::tokens_cmds::COMMANDS,
        &crate::status_cmds::COMMANDS,
        &guest_rt::channel::commands::CHANNEL,
        &crate::channel_cmds::COMMANDS,
        &DIAG,
        &guest_rt::probes::PROBES,
        &crate::attack_cmds::COMMANDS,
        &guest_rt::probe_cmds::PROBE,
    ]);

    fn main(info: &'static BootInfo) -> ! {
        crate::channel_cmds::start();
        crate::hostctl::init(info);
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
