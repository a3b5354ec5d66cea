//! System tests of the hypervisor foundation: boot, both shells, the monitor, virtual timer
//! interrupts, isolation with fault containment, restart and per-VM reset.
//!
//! Each test boots its own QEMU (no model: these tests do not need one). Every wait is bounded;
//! on failure the harness prints the console log.

use std::time::Duration;

use sis_e2e::text::{field, vm_line};
use sis_e2e::{Options, Sis, Source};

const BOOT: Duration = Duration::from_secs(60);
const CMD: Duration = Duration::from_secs(20);

fn boot() -> Sis {
    let opts = Options {
        no_model: true,
        ..Options::default()
    };
    Sis::boot(opts, BOOT).expect("boot to both prompts")
}

#[test]
fn guests_report_their_partition_and_timer_ticks() {
    let sis = boot();

    let ctl = sis.run(Source::Ctl, "info", CMD).unwrap();
    assert!(ctl.contains("el: 1"), "{ctl}");
    assert!(ctl.contains("vm: ctl (id 0)"), "{ctl}");
    assert!(ctl.lines().any(|l| l.trim() == "cores: 0"), "{ctl}");
    assert!(ctl.contains("memory: 64 MiB at 0x40000000"), "{ctl}");
    assert!(field(&ctl, "timer:") > 0, "{ctl}");

    let llm = sis.run(Source::Llm, "info", CMD).unwrap();
    assert!(llm.contains("vm: llm (id 1)"), "{llm}");
    assert!(llm.lines().any(|l| l.trim() == "cores: 1,2,3"), "{llm}");
    assert!(llm.contains("memory: 384 MiB at 0x40000000"), "{llm}");

    // Ticks come from virtual-timer interrupts: they advance between two calls.
    for src in [Source::Ctl, Source::Llm] {
        let a = field(&sis.run(src, "ticks", CMD).unwrap(), "ticks:");
        std::thread::sleep(Duration::from_millis(500));
        let b = field(&sis.run(src, "ticks", CMD).unwrap(), "ticks:");
        assert!(b > a, "{src}: ticks did not advance ({a} -> {b})");
    }

    let vms = sis.run(Source::Hv, "vms", CMD).unwrap();
    for (name, cores) in [("ctl", "cores=0 "), ("llm", "cores=1,2,3 ")] {
        let line = vm_line(&vms, name);
        assert!(line.contains(" running "), "{line}");
        assert!(line.contains(cores), "{line}");
        assert!(field(line, "exits=") > 0, "{line}");
        assert!(field(line, "irq=") > 0, "{line}");
        assert!(field(line, "irqs=") > 0, "{line}");
    }
}

#[test]
fn bad_input_gets_clear_errors() {
    let sis = boot();
    let out = sis.run(Source::Hv, "frobnicate", CMD).unwrap();
    assert!(
        out.contains("unknown command 'frobnicate' (try 'help')"),
        "{out}"
    );
    let out = sis.run(Source::Hv, "stop nosuchvm", CMD).unwrap();
    assert!(out.contains("no VM named 'nosuchvm'"), "{out}");
    let out = sis.run(Source::Hv, "restart", CMD).unwrap();
    assert!(out.contains("usage: restart <vm>"), "{out}");
    let out = sis.run(Source::Hv, "start ctl", CMD).unwrap();
    assert!(out.contains("vm ctl is running"), "{out}");
    let out = sis.run(Source::Hv, "help", CMD).unwrap();
    for cmd in ["vms", "stop", "start", "restart", "switch"] {
        assert!(out.contains(cmd), "help lacks {cmd}: {out}");
    }
    let out = sis.run(Source::Ctl, "nosuchcommand", CMD).unwrap();
    assert!(out.contains("unknown command: nosuchcommand"), "{out}");
    let out = sis.run(Source::Ctl, "peek zzz", CMD).unwrap();
    assert!(out.contains("peek: bad address"), "{out}");
    // An unknown console key is reported, dropped and counted; the focus does not move.
    sis.mark(Source::Hv);
    sis.send_raw(&[0x01, b'q']).unwrap();
    sis.expect(Source::Hv, "unknown console key Ctrl-A 'q'", CMD)
        .expect("bad key reported");
    // Nothing changed: both VMs still run.
    let vms = sis.run(Source::Hv, "vms", CMD).unwrap();
    assert!(vms.contains("unknown Ctrl-A keys dropped=1"), "{vms}");
    assert!(vm_line(&vms, "ctl").contains(" running "), "{vms}");
    assert!(vm_line(&vms, "llm").contains(" running "), "{vms}");
}

#[test]
fn fault_stops_only_the_faulting_guest_and_restart_recovers_it() {
    let sis = boot();
    // The guest reads its own RAM fine...
    let own = sis.run(Source::Ctl, "peek 0x40080000", CMD).unwrap();
    assert!(own.contains("0x40080000: 0x"), "{own}");
    // ...but the LLM partition's physical RAM is not in its stage-2 map.
    sis.mark(Source::Hv);
    sis.send_line(Source::Ctl, "peek 0x50000000").unwrap();
    let report = sis.expect(
        Source::Hv,
        "vm ctl stopped: stage-2 data fault at IPA 0x50000000",
        CMD,
    );
    let report = report.expect("fault report on the monitor");
    let rest = sis
        .expect(Source::Hv, "(core 0)", CMD)
        .expect("report names the core");
    let line = format!("{}{}", report.text, rest.before);
    assert!(
        line.contains("data abort") && line.contains("read"),
        "{line}"
    );

    // The other guest keeps answering.
    let llm = sis.run(Source::Llm, "info", CMD).unwrap();
    assert!(llm.contains("cores: 1,2,3"), "{llm}");
    let vms = sis.run(Source::Hv, "vms", CMD).unwrap();
    assert!(vm_line(&vms, "ctl").contains(" stopped "), "{vms}");
    assert!(vm_line(&vms, "llm").contains(" running "), "{vms}");

    // Restart brings the stopped VM back from its pristine image.
    let out = sis.run(Source::Hv, "restart ctl", CMD).unwrap();
    assert!(out.contains("vm ctl restarted"), "{out}");
    sis.expect(Source::Ctl, "ctl: booted on core 0", BOOT)
        .expect("ctl boots again");
    sis.wait_prompt(Source::Ctl, BOOT).expect("ctl> again");
    let ctl = sis.run(Source::Ctl, "info", CMD).unwrap();
    assert!(ctl.contains("vm: ctl (id 0)"), "{ctl}");
    let vms = sis.run(Source::Hv, "vms", CMD).unwrap();
    let line = vm_line(&vms, "ctl");
    assert!(
        line.contains(" running ") && field(line, "restarts=") == 1,
        "{line}"
    );
    assert_eq!(field(vm_line(&vms, "llm"), "restarts="), 0, "{vms}");
}

#[test]
fn system_reset_restarts_only_that_guest() {
    let sis = boot();
    let before = field(&sis.run(Source::Ctl, "ticks", CMD).unwrap(), "ticks:");
    sis.mark(Source::Hv);
    sis.send_line(Source::Llm, "reboot").unwrap();
    sis.expect(Source::Hv, "vm llm reset (PSCI SYSTEM_RESET)", CMD)
        .expect("reset reported");
    sis.expect(Source::Llm, "llm: booted on core 1", BOOT)
        .expect("llm boots again");
    sis.wait_prompt(Source::Llm, BOOT).expect("llm> again");
    let llm = sis.run(Source::Llm, "info", CMD).unwrap();
    assert!(
        llm.contains("cores: 1,2,3"),
        "secondaries restarted too: {llm}"
    );
    // The control guest was not reset: its tick count kept growing.
    let after = field(&sis.run(Source::Ctl, "ticks", CMD).unwrap(), "ticks:");
    assert!(after > before, "ctl ticks went from {before} to {after}");
    let vms = sis.run(Source::Hv, "vms", CMD).unwrap();
    assert_eq!(field(vm_line(&vms, "llm"), "restarts="), 1, "{vms}");
    assert_eq!(field(vm_line(&vms, "ctl"), "restarts="), 0, "{vms}");

    // Stop and start from the monitor too.
    let out = sis.run(Source::Hv, "stop llm", CMD).unwrap();
    assert!(out.contains("vm llm stopped"), "{out}");
    let out = sis.run(Source::Hv, "start llm", CMD).unwrap();
    assert!(out.contains("vm llm started"), "{out}");
    sis.wait_prompt(Source::Llm, BOOT)
        .expect("llm> after start");
}

#[test]
fn list_register_overflow_is_refilled_on_the_maintenance_interrupt() {
    let sis = boot();
    // Eight SGIs pended at once: twice as many as QEMU's list registers.
    for src in [Source::Ctl, Source::Llm] {
        let out = sis.run(src, "irqburst", CMD).unwrap();
        assert!(out.contains("irqburst: 8/8 SGIs delivered"), "{src}: {out}");
    }
    let vms = sis.run(Source::Hv, "vms", CMD).unwrap();
    for name in ["ctl", "llm"] {
        let line = vm_line(&vms, name);
        assert!(field(line, "lr_overflows=") > 0, "{line}");
        assert!(field(line, "sysreg=") >= 8, "SGI writes trap: {line}");
    }
    // The guests still answer afterwards.
    assert!(sis
        .run(Source::Ctl, "ticks", CMD)
        .unwrap()
        .contains("ticks:"));
}

#[test]
fn bad_hypercall_and_psci_arguments_are_refused_and_change_nothing() {
    let sis = boot();
    let before = sis.run(Source::Hv, "audit", CMD).unwrap();
    let written = field(&before, "audit:");
    for src in [Source::Ctl, Source::Llm] {
        let out = sis.run(src, "hvprobe", CMD).unwrap();
        assert!(
            out.contains("hvprobe: 10/10 refused as expected"),
            "{src}: {out}"
        );
        assert!(!out.contains("FAIL"), "{src}: {out}");
    }
    // Nothing was written to the audit log; the refusals are counted per VM.
    let after = sis.run(Source::Hv, "audit", CMD).unwrap();
    assert_eq!(field(&after, "audit:"), written, "{after}");
    let ring = sis.run(Source::Hv, "ring", CMD).unwrap();
    for name in ["ctl", "llm"] {
        let line = sis_e2e::text::line(&ring, &format!("vm {name}:"));
        assert_eq!(field(line, "audit_rejected="), 3, "{line}");
    }
    // No core of another VM was started: both VMs still have exactly their own cores.
    let llm = sis.run(Source::Llm, "info", CMD).unwrap();
    assert!(llm.lines().any(|l| l.trim() == "cores: 1,2,3"), "{llm}");
    let ctl = sis.run(Source::Ctl, "info", CMD).unwrap();
    assert!(ctl.lines().any(|l| l.trim() == "cores: 0"), "{ctl}");
    let vms = sis.run(Source::Hv, "vms", CMD).unwrap();
    assert!(vm_line(&vms, "ctl").contains(" running "), "{vms}");
    assert!(vm_line(&vms, "llm").contains(" running "), "{vms}");
}
