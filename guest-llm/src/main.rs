//! guest-llm: the LLM guest kernel, which runs inference: it serves requests from the ring and
//! its `llm>` shell with the engine, under the CBS/EDF scheduler, on worker cores. Boots on the
//! first core of its partition and starts the others as workers.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

extern crate alloc;

#[cfg(target_os = "none")]
mod cores;
#[cfg(target_os = "none")]
mod workers;

// The LLM service (docs/llm-service.md); pure modules are also built for host tests.
#[cfg(any(test, target_os = "none"))]
mod graph;
#[cfg(any(test, target_os = "none"))]
mod manifest;
#[cfg(target_os = "none")]
mod model;
#[cfg(target_os = "none")]
mod parallel;
#[cfg(target_os = "none")]
mod ring_service;
#[cfg(target_os = "none")]
mod service;
#[cfg(any(test, target_os = "none"))]
mod service_args;
#[cfg(target_os = "none")]
mod service_audit;
#[cfg(target_os = "none")]
mod service_loop;
#[cfg(target_os = "none")]
mod service_ring;
#[cfg(target_os = "none")]
mod shell_llm;

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
        &crate::shell_llm::COMMANDS,
        &guest_rt::channel::commands::CHANNEL,
        &crate::ring_service::COMMANDS,
        &DIAG,
        &guest_rt::probes::PROBES,
        &guest_rt::probe_cmds::PROBE,
    ]);

    fn main(info: &'static BootInfo) -> ! {
        crate::workers::start_all(info);
        crate::ring_service::start();
        crate::service_loop::run("llm> ", &COMMANDS)
    }

    guest_rt::entry!(
        GuestConfig {
            name: "llm",
            native_all_cores: true
        },
        main
    );
}
