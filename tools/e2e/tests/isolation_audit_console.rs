//! System tests of what a compromised guest can do to what the guests share besides the ring:
//! the audit log (forging the hypervisor's records, flooding the others' records out), the
//! doorbell (an interrupt storm on the peer) and the console (spoofing another console's tag,
//! driving the host terminal, interleaving inside lines). Each attack runs from the guest's
//! shell with the isolation probes (`auditforge`, `auditflood`, `doorbellflood`, `printraw`).
//!
//! Two boots, no model.

use std::time::Duration;

use sis_e2e::text::{field, line, vm_line};
use sis_e2e::{Options, Sis, Source};

const BOOT: Duration = Duration::from_secs(60);
const CMD: Duration = Duration::from_secs(20);
const FLOOD: Duration = Duration::from_secs(240);

fn boot() -> Sis {
    let opts = Options {
        no_model: true,
        ..Options::default()
    };
    Sis::boot(opts, BOOT).expect("boot to both prompts")
}

/// The monitor's line for segment `by`/`vm`.
fn segment<'a>(audit: &'a str, by: &str, vm: &str) -> &'a str {
    line(audit, &format!("segment by={by} vm={vm}:"))
}

#[test]
fn guests_cannot_forge_or_flush_the_audit_log_nor_storm_the_doorbell() {
    let sis = boot();
    // A record of ctl's own, before the flood.
    let out = sis.run(Source::Ctl, "ping 5", CMD).unwrap();
    assert!(out.contains("ping: 5/5 replies"), "{out}");

    // Forging the hypervisor's ops: refused, counted, nothing written.
    let out = sis.run(Source::Llm, "auditforge", CMD).unwrap();
    assert!(
        out.contains("op=11(vm_start) refused: DENIED")
            && out.contains("op=10(vm_fault) refused: DENIED")
            && out.contains("op=13(dma_fault) refused: DENIED"),
        "{out}"
    );
    let audit = sis.run(Source::Hv, "audit", CMD).unwrap();
    assert_eq!(
        field(segment(&audit, "llm", "llm"), "refused"),
        3,
        "{audit}"
    );
    assert!(
        !audit.contains("by=llm t="),
        "nothing written by llm:\n{audit}"
    );
    assert!(
        audit.contains("by=hv t=") && audit.contains("vm=llm op=11(vm_start)"),
        "{audit}"
    );
    let vms = sis.run(Source::Hv, "vms", CMD).unwrap();
    assert_eq!(field(vm_line(&vms, "llm"), "audit_denied="), 3, "{vms}");

    // Flooding: more appends than the whole log held before, from one guest.
    let out = sis.run(Source::Llm, "auditflood 20000", FLOOD).unwrap();
    assert!(
        out.contains("auditflood: 20000 appended, 0 failed"),
        "{out}"
    );
    let audit = sis.run(Source::Hv, "audit", CMD).unwrap();
    let llm = segment(&audit, "llm", "llm");
    assert!(field(llm, "overwritten") > 0, "{audit}");
    for (by, vm) in [("ctl", "ctl"), ("hv", "ctl"), ("hv", "llm")] {
        let s = segment(&audit, by, vm);
        assert_eq!(field(s, "overwritten"), 0, "{audit}");
        assert!(field(s, "written") >= 1, "{audit}");
    }
    // Both guests' readers still see the other writers' records.
    for src in [Source::Ctl, Source::Llm] {
        let hv = sis.run(src, "audit 8 hv", CMD).unwrap();
        assert!(
            hv.contains("by=hv t=") && hv.contains("vm=ctl op=11(vm_start)"),
            "{hv}"
        );
        assert!(hv.contains("vm=llm op=11(vm_start)"), "{hv}");
        let ctl = sis.run(src, "audit 2 ctl", CMD).unwrap();
        assert!(
            ctl.contains("by=ctl t=") && ctl.contains("vm=ctl op=12(ring_ping)"),
            "{ctl}"
        );
        assert!(ctl.contains("tokens=5"), "{ctl}");
    }

    // Doorbell storm from llm: most calls refused by the rate limit, counted.
    let out = sis.run(Source::Llm, "doorbellflood 300000", FLOOD).unwrap();
    let l = line(&out, "doorbellflood:");
    let limited = field(l, "accepted, ");
    assert!(limited > 0, "the rate limit refused nothing: {out}");
    let vms = sis.run(Source::Hv, "vms", CMD).unwrap();
    assert!(
        field(vm_line(&vms, "llm"), "doorbells_limited=") >= limited,
        "{vms}"
    );
    let ring = sis.run(Source::Hv, "ring", CMD).unwrap();
    let llm_ring = line(&ring, "vm llm: doorbells");
    assert!(field(llm_ring, "limited=") >= limited, "{ring}");
    // And the ring still works both ways.
    let out = sis.run(Source::Ctl, "ping 10", CMD).unwrap();
    assert!(out.contains("ping: 10/10 replies"), "{out}");
}

#[test]
fn guest_bytes_reach_the_terminal_escaped_and_in_whole_lines() {
    let sis = boot();
    let raw = String::from_utf8_lossy(&sis.raw_log()).into_owned();
    // Boot output of both guests, printed at the same time, arrives as whole lines.
    for whole in [
        "\n[ctl] ctl: booted on core 0, 64 MiB RAM\r\n",
        "\n[llm] llm: booted on core 1, 384 MiB RAM\r\n",
    ] {
        assert!(raw.contains(whole), "{whole:?} not whole in:\n{raw}");
    }

    sis.run(Source::Ctl, "printraw", CMD).unwrap();
    let raw = sis.raw_log();
    let text = String::from_utf8_lossy(&raw).into_owned();
    for shown in [
        "[ctl] ^MSPOOF1 [llm] forged line\r\n",
        "[ctl] SPOOF2 ^[[31mred^[[0m colour\r\n",
        "[ctl] SPOOF3 ^[]0;pwned title^G title\r\n",
        "[ctl] SPOOF4 ^[[6n dsr\r\n",
        "[ctl] SPOOF5 \\xC2\\x9B31m c1 csi \\x9B raw\r\n",
        "[ctl] SPOOF6 crlf line\r\n",
        "[ctl] SPOOF8 del ^? bell ^G nul ^@ end\r\n",
    ] {
        assert!(text.contains(shown), "{shown:?} not in:\n{text}");
    }
    let bs = line(&text, "[ctl] SPOOF7 ");
    assert!(bs.contains("^H") && bs.ends_with(" backspaces"), "{bs:?}");
    // Nothing of it reached the llm console.
    assert!(!sis.text(Source::Llm).contains("forged line"));

    // The history replay repeats the same sanitised text.
    sis.run(Source::Llm, "help", CMD).unwrap();
    sis.run(Source::Ctl, "ticks", CMD).unwrap();
    let text = String::from_utf8_lossy(&sis.raw_log()).into_owned();
    assert!(
        text.matches("[ctl] SPOOF2 ^[[31mred^[[0m colour\r\n")
            .count()
            >= 2,
        "{text}"
    );

    // No control byte a terminal acts on anywhere in the stream: no ESC, BEL, C1 CSI, NUL,
    // and every CR ends a line.
    let raw = sis.raw_log();
    for (i, &b) in raw.iter().enumerate() {
        assert!(
            !matches!(b, 0x1b | 0x07 | 0x9b | 0x00),
            "byte {b:#x} at {i}:\n{text}"
        );
        if b == b'\r' {
            assert_eq!(raw.get(i + 1), Some(&b'\n'), "bare CR at {i}:\n{text}");
        }
    }
}
