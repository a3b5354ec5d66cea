//! The `cores` command: checks that every worker core answers a job and shows its ticks.

use core::sync::atomic::{AtomicU64, Ordering};

use guest_rt::shell::{Command, Invocation};
use guest_rt::{smp, timer};
use sis_platform::layout::phys::NUM_CORES;

use crate::workers;

/// Commands of this module.
pub static COMMANDS: [Command; 1] = [Command {
    name: "cores",
    help: "ping every worker core and show its ticks and jobs",
    run: cores,
}];

/// Tick count each worker saw when it last ran the probe job.
static SEEN_TICKS: [AtomicU64; NUM_CORES] = [const { AtomicU64::new(0) }; NUM_CORES];

fn probe(core: usize) {
    SEEN_TICKS[core].store(timer::ticks(core), Ordering::Release);
}

/// How long to wait for a worker to run the probe.
const PROBE_TIMEOUT_MS: u64 = 500;

fn cores(inv: &mut Invocation<'_, '_>) {
    let me = smp::core_id();
    let _ = writeln!(inv.out, "core {me}: shell, ticks {}", timer::ticks(me));
    let workers = workers::worker_mask();
    for core in (0..NUM_CORES).filter(|c| workers & (1 << c) != 0) {
        let before = workers::jobs_done(core);
        if let Err(e) = workers::submit(core, &(probe as workers::Job)) {
            let _ = writeln!(inv.out, "core {core}: {e}");
            continue;
        }
        let deadline = timer::counter() + timer::frequency() * PROBE_TIMEOUT_MS / 1000;
        while workers::jobs_done(core) == before && timer::counter() < deadline {
            guest_rt::sync::spin_yield();
        }
        if workers::jobs_done(core) == before {
            let _ = writeln!(
                inv.out,
                "core {core}: worker, no answer within {PROBE_TIMEOUT_MS} ms"
            );
        } else {
            let _ = writeln!(
                inv.out,
                "core {core}: worker, ticks {}, jobs {}",
                SEEN_TICKS[core].load(Ordering::Acquire),
                workers::jobs_done(core)
            );
        }
    }
    let _ = writeln!(
        inv.out,
        "wake interrupts sent to sleeping workers: {}",
        workers::wakes()
    );
}
