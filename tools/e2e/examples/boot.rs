//! Boots SIS through the harness, lets it run for a while, and prints what the harness sees on
//! each console, the harness counters and the monitor's `vms` table. Useful to check what a test
//! would see, without writing one.
//!
//! `cargo run -p sis-e2e --example boot -- [--no-model | --model PATH] [--secs N] [--icount N]`
//! (build first with `scripts/build.sh`).

use sis_e2e::{Options, Sis, Source};
use std::time::Duration;

fn usage() -> ! {
    eprintln!("usage: boot [--no-model | --model PATH] [--secs N] [--icount N]");
    std::process::exit(2);
}

fn main() {
    let mut opts = Options {
        keep_logs: true,
        ..Options::default()
    };
    let mut secs = 5u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--no-model" => opts.no_model = true,
            "--model" => opts.model = Some(value().into()),
            "--secs" => secs = value().parse().unwrap_or_else(|_| usage()),
            "--icount" => opts.icount = Some(value().parse().unwrap_or_else(|_| usage())),
            _ => usage(),
        }
    }
    let sis = match Sis::start(opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    std::thread::sleep(Duration::from_secs(secs));
    for s in Source::ALL {
        println!("===== {s} =====\n{}", sis.text(s));
    }
    match sis.run(Source::Hv, "vms", Duration::from_secs(10)) {
        Ok(out) => println!("===== hv> vms =====\n{out}"),
        Err(e) => println!("===== hv> vms failed =====\n{e}"),
    }
    println!("===== harness =====\n{:#?}", sis.stats());
}
