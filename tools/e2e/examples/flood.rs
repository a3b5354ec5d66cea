//! Static partitioning check: exits per LLM core while the control guest is flooded.
//!
//! Boots SIS (no model), measures each core's hypervisor exits per second while idle, then while
//! the control guest is flooded with console input and output (`help` typed as fast as the
//! harness can), and prints the ratio flooded/idle per core, and the kick SGIs each core got
//! during the flood. Kicks are the only way one core makes another exit: on the LLM cores (1-3)
//! there must be none. Their exits are their own timer ticks, whose rate under software
//! emulation moves with the host's load (so the ratio is near, not exactly, 1.0).
//!
//! `scripts/build.sh && cargo run --release -p sis-e2e --example flood -- [--secs N]`

use std::time::{Duration, Instant};

use sis_e2e::{Options, Sis, Source};

const CMD: Duration = Duration::from_secs(20);

/// Per core: (exits, kicks).
fn core_exits(sis: &Sis) -> Vec<(u64, u64)> {
    let vms = sis.run(Source::Hv, "vms", CMD).expect("vms");
    let line = vms
        .lines()
        .find(|l| l.starts_with("core exits/kicks:"))
        .unwrap_or_else(|| panic!("no core exits line in:\n{vms}"));
    line["core exits/kicks:".len()..]
        .split_whitespace()
        .map(|kv| {
            let v = kv.split('=').nth(1).expect("core=exits/kicks");
            let (e, k) = v.split_once('/').expect("exits/kicks");
            (e.parse().expect("exits"), k.parse().expect("kicks"))
        })
        .collect()
}

fn rates(a: &[(u64, u64)], b: &[(u64, u64)], secs: f64) -> Vec<f64> {
    a.iter()
        .zip(b)
        .map(|(x, y)| (y.0 - x.0) as f64 / secs)
        .collect()
}

fn main() {
    let mut secs = 5u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => secs = args.next().and_then(|v| v.parse().ok()).expect("--secs N"),
            _ => {
                eprintln!("usage: flood [--secs N]");
                std::process::exit(2);
            }
        }
    }
    let sis = Sis::start(Options {
        no_model: true,
        ..Options::default()
    })
    .expect("start");
    sis.wait_prompt(Source::Ctl, CMD).expect("ctl>");
    sis.wait_prompt(Source::Llm, CMD).expect("llm>");

    let t0 = Instant::now();
    let a = core_exits(&sis);
    std::thread::sleep(Duration::from_secs(secs));
    let b = core_exits(&sis);
    let idle = rates(&a, &b, t0.elapsed().as_secs_f64());

    let t1 = Instant::now();
    let c = core_exits(&sis);
    let mut n = 0;
    while t1.elapsed() < Duration::from_secs(secs) {
        sis.run(Source::Ctl, "help", CMD).expect("help");
        n += 1;
    }
    let d = core_exits(&sis);
    let flood = rates(&c, &d, t1.elapsed().as_secs_f64());

    println!("commands typed into guest-ctl during the flood: {n}");
    println!("core  idle exits/s  flooded exits/s  ratio  kicks during flood");
    for (core, (i, f)) in idle.iter().zip(&flood).enumerate() {
        let kicks = d[core].1 - c[core].1;
        println!(
            "{core:>4}  {i:>12.1}  {f:>15.1}  {:>5.2}  {kicks:>18}",
            f / i.max(1.0)
        );
    }
}
