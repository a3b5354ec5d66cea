//! System tests of the inter-guest channel: `ping` round trips through the LLM guest with
//! counters that agree on both sides and an audit record, a hostile LLM guest scribbling on
//! the shared ring, a stopped peer, the audit log being read-only to guests, and a control
//! guest restart (new epoch, the LLM guest re-attaches).
//!
//! No model needed: the ring service answers pings itself.

use std::time::Duration;

use sis_e2e::text::{field, line, vm_line};
use sis_e2e::{Options, Sis, Source};

const BOOT: Duration = Duration::from_secs(60);
const CMD: Duration = Duration::from_secs(20);
const PING_1000: Duration = Duration::from_secs(180);

/// Guest-physical address of the audit log.
const AUDIT_IPA: u64 = sis_e2e::platform::layout::ipa::AUDIT_BASE;

fn boot() -> Sis {
    let opts = Options {
        no_model: true,
        ..Options::default()
    };
    Sis::boot(opts, BOOT).expect("boot to both prompts")
}

/// (p50, p99) from a full `ping` reply line, asserting `n/n` replies.
fn ping_ok(sis: &Sis, n: u64) -> (u64, u64) {
    let out = sis
        .run(Source::Ctl, &format!("ping {n}"), PING_1000)
        .expect("ping");
    let l = line(&out, "replies, rtt");
    assert!(l.contains(&format!("ping: {n}/{n} replies")), "{out}");
    let (p50, p99) = (field(l, "p50"), field(l, "p99"));
    assert!(p50 <= p99, "{out}");
    (p50, p99)
}

fn vm_running(sis: &Sis, name: &str) -> bool {
    let vms = sis.run(Source::Hv, "vms", CMD).expect("vms");
    vm_line(&vms, name).contains(" running ")
}

#[test]
fn ping_1000_counters_agree_and_are_audited() {
    let sis = boot();
    let (p50, p99) = ping_ok(&sis, 1000);
    eprintln!("ping 1000: rtt p50 {p50} us p99 {p99} us");

    let ctl = sis.run(Source::Ctl, "ring", CMD).unwrap();
    let llm = sis.run(Source::Llm, "ring", CMD).unwrap();
    assert!(ctl.contains("pings sent 1000 pongs received 1000"), "{ctl}");
    assert!(llm.contains("pings received 1000 pongs sent 1000"), "{llm}");
    // Both ends agree on both directions.
    let req = "requests (ctl->llm):";
    let resp = "responses (llm->ctl):";
    assert_eq!(
        field(line(&ctl, req), "sent"),
        field(line(&llm, req), "received"),
        "ctl:\n{ctl}\nllm:\n{llm}"
    );
    assert_eq!(
        field(line(&llm, resp), "sent"),
        field(line(&ctl, resp), "received"),
        "ctl:\n{ctl}\nllm:\n{llm}"
    );
    assert_eq!(field(line(&ctl, resp), "rejected"), 0, "{ctl}");
    assert_eq!(field(&ctl, "timeouts"), 0, "{ctl}");
    assert!(field(line(&ctl, "doorbells:"), "tx") >= 1000, "{ctl}");
    assert!(field(line(&llm, "doorbells:"), "rx") >= 1, "{llm}");

    // One record for the run, from vm ctl: tokens = replies, extra = requested.
    let want = "vm=ctl op=12(ring_ping) status=0b001 prompt_len=0 tokens=1000";
    let audit = sis.run(Source::Hv, "audit", CMD).unwrap();
    let rec = line(&audit, want);
    assert!(rec.ends_with("extra=0x3e8"), "{audit}");
    // The guests read the same record from their read-only mapping.
    for src in [Source::Ctl, Source::Llm] {
        let out = sis.run(src, "audit 4", CMD).unwrap();
        assert!(out.contains(want), "{src}: {out}");
    }

    // Back-pressure: a burst larger than the response ring. The first ringful goes out
    // without doorbells, so the ring is really full; the rest waits in the LLM guest's outbox
    // and goes out when the control guest, having drained, rings for space.
    let out = sis.run(Source::Llm, "ringflood 1100", CMD).unwrap();
    assert!(
        out.contains("ringflood: 1100 responses sent (1024 in the first burst)"),
        "{out}"
    );
    assert!(out.contains("ctl took them all"), "{out}");
    let ctl = sis.run(Source::Ctl, "ring", CMD).unwrap();
    let llm = sis.run(Source::Llm, "ring", CMD).unwrap();
    assert_eq!(field(&ctl, "stale_pongs"), 1100, "{ctl}");
    assert!(field(&ctl, "space_doorbells") >= 1, "{ctl}");
    assert!(ctl.contains("pongs received 2100"), "{ctl}");
    assert!(llm.contains("pongs sent 2100"), "{llm}");
    let llm_resp = line(&llm, resp);
    assert!(field(llm_resp, "full") >= 1, "{llm}");
    assert_eq!(field(llm_resp, "queued"), 0, "{llm}");
    assert_eq!(field(llm_resp, "dropped"), 0, "{llm}");
    assert_eq!(
        field(llm_resp, "sent"),
        field(line(&ctl, resp), "received"),
        "ctl:\n{ctl}\nllm:\n{llm}"
    );

    // A stopped peer: the sender gets an error at once, nothing hangs, it is counted.
    assert!(sis
        .run(Source::Hv, "stop llm", CMD)
        .unwrap()
        .contains("vm llm stopped"));
    let out = sis.run(Source::Ctl, "ping 5", CMD).unwrap();
    assert!(out.contains("ping: 0/5 replies"), "{out}");
    assert!(out.contains("peer VM is stopped"), "{out}");
    let ctl = sis.run(Source::Ctl, "ring", CMD).unwrap();
    assert_eq!(field(line(&ctl, "doorbells:"), "peer_stopped"), 1, "{ctl}");
    let audit = sis.run(Source::Hv, "audit", CMD).unwrap();
    assert!(
        audit.contains("vm=ctl op=12(ring_ping) status=0b010 prompt_len=0 tokens=0"),
        "{audit}"
    );
    // Back again: it re-attaches and answers.
    sis.run(Source::Hv, "start llm", CMD).unwrap();
    sis.expect(Source::Llm, "llm: shared ring attached, epoch 1", BOOT)
        .expect("llm re-attaches");
    sis.wait_prompt(Source::Llm, BOOT).expect("llm> again");
    ping_ok(&sis, 10);
}

#[test]
fn hostile_llm_guest_cannot_hurt_ctl_and_the_channel_recovers() {
    let sis = boot();
    ping_ok(&sis, 10);

    let junk = sis.run(Source::Llm, "ringjunk 40", CMD).unwrap();
    assert!(junk.contains("ringjunk: 40 rounds"), "{junk}");
    assert!(junk.contains("header restored"), "{junk}");
    assert!(junk.contains("ctl back in step"), "{junk}");

    let ctl = sis.run(Source::Ctl, "ring", CMD).unwrap();
    let resp = line(&ctl, "responses (llm->ctl):");
    assert!(field(resp, "rejected") > 0, "{ctl}");
    for reason in ["bad_index", "bad_sequence", "bad_length"] {
        assert!(field(resp, reason) > 0, "{reason}: {ctl}");
    }
    assert!(ctl.contains("header ok"), "{ctl}");
    assert!(vm_running(&sis, "ctl"), "ctl stopped");
    // Rejections are audited by the consumer, one record per drain pass.
    let audit = sis.run(Source::Hv, "audit", CMD).unwrap();
    assert!(audit.contains("vm=ctl op=8(ring_reject)"), "{audit}");

    // The garbage stopped: the channel works again.
    ping_ok(&sis, 10);
    let ctl2 = sis.run(Source::Ctl, "ring", CMD).unwrap();
    assert_eq!(
        field(line(&ctl2, "responses (llm->ctl):"), "rejected"),
        field(resp, "rejected"),
        "new rejections after the garbage stopped:\n{ctl}\n{ctl2}"
    );
    assert!(ctl2.contains("pongs received 20"), "{ctl2}");
}

#[test]
fn a_guest_cannot_write_the_audit_log() {
    let sis = boot();
    // Readable: the log's magic "SISAUDT1".
    let peek = format!("peek {AUDIT_IPA:#x}");
    let out = sis.run(Source::Ctl, &peek, CMD).unwrap();
    assert!(out.contains(": 0x3154445541534953"), "{out}");

    sis.mark(Source::Hv);
    sis.send_line(Source::Ctl, &format!("poke {AUDIT_IPA:#x} 1"))
        .unwrap();
    let m = sis
        .expect(
            Source::Hv,
            format!("vm ctl stopped: stage-2 data fault at IPA {AUDIT_IPA:#x}"),
            CMD,
        )
        .expect("fault report");
    let rest = sis
        .expect(Source::Hv, "(core 0)", CMD)
        .expect("report names the core");
    let report = format!("{}{}", m.text, rest.before);
    assert!(
        report.contains("permission fault") && report.contains("write"),
        "{report}"
    );
    // The LLM guest is unaffected and the log is unchanged, with the fault recorded.
    assert!(vm_running(&sis, "llm"));
    assert!(!vm_running(&sis, "ctl"));
    let out = sis.run(Source::Llm, &peek, CMD).unwrap();
    assert!(out.contains(": 0x3154445541534953"), "{out}");
    let out = sis.run(Source::Llm, "audit 4", CMD).unwrap();
    assert!(out.contains("vm=ctl op=10(vm_fault)"), "{out}");

    // A restarted control guest re-initialises the region (new epoch); the LLM guest
    // re-attaches on its doorbell and the channel works.
    sis.run(Source::Hv, "restart ctl", CMD).unwrap();
    sis.expect(Source::Ctl, "ctl: shared ring initialised, epoch 2", BOOT)
        .expect("ctl re-initialises the ring");
    sis.wait_prompt(Source::Ctl, BOOT).expect("ctl> again");
    ping_ok(&sis, 10);
    let llm = sis.run(Source::Llm, "ring", CMD).unwrap();
    assert!(llm.contains("epoch 2, attached 2 times"), "{llm}");
    assert!(llm.contains("pings received 10 pongs sent 10"), "{llm}");
}
