//! guest-llm: the LLM guest kernel. Boots on the first core of its partition, starts the others
//! as workers, then runs the `llm>` shell. The engine and scheduler plug in as further modules.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

#[cfg(target_os = "none")]
mod cores;
#[cfg(target_os = "none")]
mod ring_service;
#[cfg(target_os = "none")]
mod workers;

#[cfg(target_os = "none")]
mod kernel {
    use guest_rt::commands::COMMON;
    use guest_rt::diag::DIAG;
    use guest_rt::shell::Commands;
    use guest_rt::GuestConfig;
    use sis_platform::BootInfo;

    /// Every command of the `llm>` shell.
    static COMMANDS: Commands = Commands::new(&[
        &COMMON,
        &crate::cores::COMMANDS,
        &guest_rt::channel::commands::CHANNEL,
        &crate::ring_service::COMMANDS,
        &DIAG,
    ]);

    fn main(info: &'static BootInfo) -> ! {
        crate::workers::start_all(info);
        crate::ring_service::start();
        guest_rt::shell::run("llm> ", &COMMANDS)
    }

    guest_rt::entry!(
        GuestConfig {
            name: "llm",
            native_all_cores: true
        },
        main
    );
}
