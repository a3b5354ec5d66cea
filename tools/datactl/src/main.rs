//! `datactl`: send SIS control-plane frames from the host. See `datactl --help` and
//! docs/frames.md.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    use clap::Parser;
    let cli = datactl::cli::Cli::parse();
    let code = datactl::cli::run(&cli, &mut std::io::stdout(), &mut std::io::stderr());
    std::process::exit(code);
}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
