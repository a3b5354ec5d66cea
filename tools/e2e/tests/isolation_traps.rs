//! System tests of the guest-to-hypervisor trap surface and of what a restart leaves behind
//! (docs/security.md, "Guest to hypervisor" and "Lifecycle").
//!
//! The guests' probe commands (`mmioprobe`, `sysprobe`, `execprobe`, `bootregs`) play an
//! attacker with EL1 code execution. Each attack that the hypervisor answers by stopping the
//! VM stops only that guest: the other keeps answering, the monitor answers, and `restart`
//! brings it back, so one boot covers many attacks. Every wait is bounded; on failure the
//! harness prints the console log.

use std::time::Duration;

use sis_e2e::text::{field, vm_line};
use sis_e2e::{Options, Sis, Source};

const BOOT: Duration = Duration::from_secs(90);
const CMD: Duration = Duration::from_secs(30);

fn boot() -> Sis {
    let opts = Options {
        no_model: true,
        ..Options::default()
    };
    Sis::boot(opts, BOOT).expect("boot to both prompts")
}

fn name(src: Source) -> &'static str {
    match src {
        Source::Ctl => "ctl",
        Source::Llm => "llm",
        _ => unreachable!("only guests are attacked"),
    }
}

fn other(src: Source) -> Source {
    if src == Source::Ctl {
        Source::Llm
    } else {
        Source::Ctl
    }
}

/// Runs `cmd` in `src`, which must make the hypervisor stop that VM with a one-line report
/// starting with `report`. Then: the other guest and the monitor answer, only `src`'s VM is
/// stopped, and `restart` brings it back to its prompt.
fn stops_only_the_attacker(sis: &Sis, src: Source, cmd: &str, report: &str) {
    let vm = name(src);
    sis.mark(Source::Hv);
    sis.send_line(src, cmd).unwrap();
    let stopped = format!("vm {vm} stopped: {report}");
    sis.expect(Source::Hv, &stopped, CMD)
        .unwrap_or_else(|e| panic!("{vm}: `{cmd}` did not stop it with '{stopped}': {e}"));
    sis.expect(Source::Hv, "(core ", CMD)
        .expect("the report names the core");

    let out = sis.run(other(src), "ticks", CMD).unwrap();
    assert!(
        out.contains("ticks:"),
        "{} stopped answering: {out}",
        name(other(src))
    );
    let vms = sis.run(Source::Hv, "vms", CMD).unwrap();
    assert!(vm_line(&vms, vm).contains(" stopped "), "{vms}");
    assert!(
        vm_line(&vms, name(other(src))).contains(" running "),
        "{vms}"
    );

    let out = sis.run(Source::Hv, &format!("restart {vm}"), CMD).unwrap();
    assert!(out.contains(&format!("vm {vm} restarted")), "{out}");
    sis.expect(src, format!("{vm}: booted on core"), BOOT)
        .unwrap_or_else(|e| panic!("{vm} did not boot again: {e}"));
    sis.wait_prompt(src, BOOT).expect("prompt after restart");
}

#[test]
fn bad_device_accesses_stop_only_the_guest_that_makes_them() {
    let sis = boot();

    // Accesses the hardware takes are emulated: byte priority, 64-bit GICR_TYPER (affinity of
    // the VM's first core, Last set for ctl's single frame), 16-bit PL011 flags, IROUTER half.
    for (src, typer) in [(Source::Ctl, "0x10"), (Source::Llm, "0x100000000")] {
        let out = sis.run(src, "mmioprobe gicr 0x8 8", CMD).unwrap();
        assert!(out.contains(&format!("mmioprobe: read {typer}\n")), "{out}");
        for ok in [
            "gicd 0x421 1",
            "uart 0x18 2",
            "gicd 0x6108 4",
            "gicr-sgi 0x41b 1",
        ] {
            let out = sis.run(src, &format!("mmioprobe {ok}"), CMD).unwrap();
            assert!(out.contains("mmioprobe: read 0x"), "{ok}: {out}");
        }
    }
    // guest-ctl's configuration view: its own virtio-serial function (vendor 0x1af4, modern
    // device 0x1043) at 00:01.0, nothing where no function of its is (00:03.0 reads all-ones).
    for (probe, want) in [
        ("pcicfg 0x8000 4", "0x10431af4"),
        ("pcicfg 0x18000 4", "0xffffffff"),
    ] {
        let out = sis
            .run(Source::Ctl, &format!("mmioprobe {probe}"), CMD)
            .unwrap();
        assert!(
            out.contains(&format!("mmioprobe: read {want}\n")),
            "{probe}: {out}"
        );
    }

    // Unaligned and odd-width accesses to each emulated device, from each guest. The first two
    // are the accesses that used to panic EL2 (index 96 of a 96-entry array).
    let attacks = [
        (
            Source::Ctl,
            "gicd 0x45d 4",
            "refused GICD access (misaligned 32-bit read at offset 0x45d)",
        ),
        (
            Source::Llm,
            "gicr-sgi 0x41d 4",
            "refused GICR access (misaligned 32-bit read at offset 0x1041d)",
        ),
        (
            Source::Ctl,
            "gicr 0x14 2",
            "refused GICR access (wrong-width 16-bit read at offset 0x14)",
        ),
        (
            Source::Ctl,
            "gicr-sgi 0x100 8 1",
            "refused GICR access (wrong-width 64-bit write at offset 0x10100)",
        ),
        (
            Source::Ctl,
            "uart 0x30 8",
            "refused PL011 access (wrong-width 64-bit read at offset 0x30)",
        ),
        (
            Source::Llm,
            "gicd 0x6004 8 1",
            "refused GICD access (misaligned 64-bit write at offset 0x6004)",
        ),
        (
            Source::Llm,
            "gicr 0x0 1",
            "refused GICR access (wrong-width 8-bit read at offset 0x0)",
        ),
        (
            Source::Llm,
            "uart 0x31 1",
            "refused PL011 access (misaligned 8-bit read at offset 0x31)",
        ),
        // The PCI configuration view (guest-ctl's functions; 00:01.0 is at 0x8000): the view
        // takes 1, 2 and 4 aligned bytes only. guest-llm owns no function, so it has no view
        // at all: the same address is memory it does not own.
        (
            Source::Ctl,
            "pcicfg 0x8002 4",
            "refused PCI configuration access at IPA 0x3f008002",
        ),
        (
            Source::Ctl,
            "pcicfg 0x8000 8",
            "refused PCI configuration access at IPA 0x3f008000",
        ),
        (
            Source::Llm,
            "pcicfg 0x8000 4",
            "stage-2 data fault at IPA 0x3f008000",
        ),
    ];
    for (src, probe, report) in attacks {
        stops_only_the_attacker(&sis, src, &format!("mmioprobe {probe}"), report);
    }
    let vms = sis.run(Source::Hv, "vms", CMD).unwrap();
    assert_eq!(field(vm_line(&vms, "ctl"), "restarts="), 6, "{vms}");
    assert_eq!(field(vm_line(&vms, "llm"), "restarts="), 5, "{vms}");
}

#[test]
fn trapped_registers_shared_regions_and_restart_leave_nothing_to_the_guest() {
    let sis = boot();
    let hv = sis.text(Source::Hv);
    assert!(hv.contains("EL2 map: W^X checked"), "{hv}");

    // PMU, debug and set/way accesses are UNDEFINED for the guest (counted); ACTLR_EL1 reads
    // as zero. The guest keeps running.
    for src in [Source::Ctl, Source::Llm] {
        let out = sis.run(src, "sysprobe", CMD).unwrap();
        let undefined = out
            .lines()
            .filter(|l| l.contains(": undefined (ESR_EL1 0x02000000)"))
            .count();
        for group in ["pmu", "debug", "setway"] {
            for line in out
                .lines()
                .filter(|l| l.starts_with(&format!("sysprobe: {group} ")))
            {
                assert!(line.contains(": undefined (ESR_EL1 0x02000000)"), "{line}");
            }
        }
        assert_eq!(undefined, 10, "{out}");
        assert!(
            out.contains("sysprobe: actlr ACTLR_EL1 read: 0x0\n"),
            "{out}"
        );
        let vms = sis.run(Source::Hv, "vms", CMD).unwrap();
        assert_eq!(field(vm_line(&vms, name(src)), "undef="), 10, "{vms}");
    }

    // Shared regions are execute-never in stage 2, even if the guest maps them executable.
    stops_only_the_attacker(
        &sis,
        Source::Ctl,
        "execprobe ring",
        "stage-2 instruction fault at IPA 0x30000000",
    );
    stops_only_the_attacker(
        &sis,
        Source::Llm,
        "execprobe audit",
        "stage-2 instruction fault at IPA 0x30100000",
    );

    // A restart leaves nothing of the previous run: a canary at the top of RAM, FP/SIMD state
    // (fpcheck leaves a pattern in q0-q31), and EL1 registers of every vCPU.
    for (src, canary) in [(Source::Ctl, "0x43fffff8"), (Source::Llm, "0x57fffff8")] {
        let vm = name(src);
        let out = sis
            .run(src, &format!("poke {canary} 0x5ca1ab1e"), CMD)
            .unwrap();
        assert!(out.contains("<- 0x000000005ca1ab1e"), "{out}");
        let out = sis.run(src, &format!("peek {canary}"), CMD).unwrap();
        assert!(out.contains(": 0x000000005ca1ab1e"), "{out}");
        let out = sis.run(src, "fpcheck", CMD).unwrap();
        assert!(out.contains("fpcheck: ok"), "{out}");
        sis.mark(Source::Hv);
        sis.send_line(src, "reboot").unwrap();
        sis.expect(
            Source::Hv,
            format!("vm {vm} reset (PSCI SYSTEM_RESET)"),
            CMD,
        )
        .expect("reset reported");
        sis.expect(src, format!("{vm}: booted on core"), BOOT)
            .expect("boots again");
        sis.wait_prompt(src, BOOT).expect("prompt after reboot");
        let out = sis.run(src, &format!("peek {canary}"), CMD).unwrap();
        assert!(
            out.contains(&format!("{canary}: 0x0000000000000000")),
            "{vm}: the canary survived the reboot: {out}"
        );
        let out = sis.run(src, "bootregs", CMD).unwrap();
        let cores = out
            .lines()
            .filter(|l| l.starts_with("bootregs: core "))
            .count();
        let clean = out.lines().filter(|l| l.ends_with(": clean")).count();
        assert_eq!(
            (cores, clean),
            (if src == Source::Ctl { 1 } else { 3 }, cores),
            "{vm}: state of the previous run visible after reboot: {out}"
        );
    }
}
