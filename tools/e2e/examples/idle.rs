//! What an idle SIS costs the host: QEMU's CPU time while both guests sit at their prompts.
//!
//! Boots SIS (with the test model loaded into the LLM partition, so the engine's worker cores
//! are up and the model is validated, or `--no-model`), waits for both prompts, lets the system
//! settle, then reads QEMU's user + system CPU time from `/proc/<pid>/stat` at the start and end
//! of a window (20 s by default) and prints it as a percentage of one host core. A busy-waiting
//! vCPU costs 100% of a core under TCG; an idle vCPU that sleeps in WFI costs nothing.
//!
//! `scripts/build.sh && cargo run --release -p sis-e2e --example idle -- [--secs N] [--no-model]`

use std::time::{Duration, Instant};

use sis_e2e::{workspace_root, Options, Sis, Source};

const CMD: Duration = Duration::from_secs(60);

/// QEMU's user + system CPU time so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/pid/stat");
    // The command name is in parentheses and may hold spaces: fields count from after it.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of proc(5) (utime, stime) are 12 and 13 after the name.
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}

fn clock_ticks_per_sec() -> f64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf CLK_TCK");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("CLK_TCK")
}

fn main() {
    let mut secs = 20u64;
    let mut no_model = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => secs = args.next().and_then(|v| v.parse().ok()).expect("--secs N"),
            "--no-model" => no_model = true,
            _ => {
                eprintln!("usage: idle [--secs N] [--no-model]");
                std::process::exit(2);
            }
        }
    }
    let model = workspace_root().join("models/test/tiny-llama.gguf");
    let sis = Sis::start(Options {
        no_model,
        model: (!no_model).then_some(model),
        ..Options::default()
    })
    .expect("start");
    sis.wait_prompt(Source::Ctl, CMD).expect("ctl>");
    sis.wait_prompt(Source::Llm, CMD).expect("llm>");
    if !no_model {
        let out = sis
            .run(Source::Llm, "llmctl load", CMD)
            .expect("llmctl load");
        assert!(
            out.contains("llmctl load: ok"),
            "llmctl load failed:\n{out}"
        );
    }
    // Let boot work and the last command's echo settle.
    std::thread::sleep(Duration::from_secs(2));

    let hz = clock_ticks_per_sec();
    let pid = sis.pid();
    let t0 = Instant::now();
    let a = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(secs));
    let b = cpu_ticks(pid);
    let wall = t0.elapsed().as_secs_f64();
    let cpu = (b - a) as f64 / hz;
    println!(
        "idle SIS ({}): QEMU used {cpu:.2} s of CPU in {wall:.1} s = {:.1}% of one host core",
        if no_model {
            "no model"
        } else {
            "test model loaded"
        },
        100.0 * cpu / wall
    );
}
