use super::*;
use sis_frame::auth::{RateLimitConfig, Rights, Secrets};
use sis_frame::codec::{encode, InferParams, Sampling, Stops, Version, MAX_FRAME_LEN};
use std::vec::Vec;

const SECRETS: Secrets = Secrets {
    admin: 0xa11ce,
    submit: 0x5ab,
    ctl_key: 0x9f12_3456_789a_bcde,
};

#[derive(Default)]
struct Host {
    lines: Vec<Vec<u8>>,
    refuse: bool,
}

impl HostOut for Host {
    fn send_line(&mut self, line: &[u8]) -> bool {
        if self.refuse {
            return false;
        }
        self.lines.push(line.to_vec());
        true
    }
}

#[derive(Default)]
struct Audit(Vec<AuditEntry>);

impl AuditOut for Audit {
    fn append(&mut self, e: &AuditEntry) -> bool {
        self.0.push(*e);
        true
    }
}

/// Forwards everything and remembers the tickets.
#[derive(Default)]
struct Fwd(Vec<Ticket>);

impl LlmLink for Fwd {
    fn forward(&mut self, req: &Request<'_>, _now: u64, line: &mut [u8]) -> Forwarded {
        if let Command::LlmInferPoll { infer_id, .. } = req.command {
            // Served locally, at once.
            let n = sis_frame::reply::write_ok(
                line,
                &[sis_frame::reply::Field::num("id", u64::from(infer_id))],
            )
            .unwrap();
            return Forwarded::Line(n);
        }
        let t = 100 + self.0.len() as u64;
        self.0.push(t);
        Forwarded::Wait(t)
    }
}

fn zero_clock() -> u64 {
    0
}

fn ctl() -> Control {
    Control::new(
        Some(Authenticator::new(SECRETS, RateLimitConfig::DEFAULT).unwrap()),
        zero_clock,
    )
}

fn frame(token: u64, command: Command<'_>) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let req = Request {
        version: Version::V0,
        token,
        seq: 0,
        command,
    };
    let n = encode(&req, &mut buf).unwrap();
    buf[..n].to_vec()
}

fn load(token: u64) -> Vec<u8> {
    frame(
        token,
        Command::LlmLoad {
            wcet_cycles: Some(25_000),
        },
    )
}

fn infer(token: u64) -> Vec<u8> {
    frame(
        token,
        Command::LlmInferStart(InferParams {
            prompt: "why op b slow?",
            max_tokens: 4,
            sampling: Sampling::GREEDY,
            chat: false,
            stream: false,
            stop: Stops::NONE,
            system: "",
            session: None,
        }),
    )
}

fn at(ms: u64) -> Now {
    Now { ms, us: ms * 1000 }
}

fn text(h: &Host) -> Vec<String> {
    h.lines
        .iter()
        .map(|l| String::from_utf8(l.clone()).unwrap())
        .collect()
}

#[test]
fn every_frame_answered_once_in_order_and_audited_once() {
    let mut c = ctl();
    let (mut h, mut a) = (Host::default(), Audit::default());
    let embed_admin = sis_frame::auth::embed_token(SECRETS.ctl_key, Rights::ADMIN).unwrap();
    let mut wire = Vec::new();
    wire.extend(load(embed_admin)); // allowed, LLM unavailable
    wire.extend(b"noise without the magic");
    wire.extend(infer(0x1)); // bad token
    wire.extend(load(SECRETS.submit)); // missing right
    wire.extend([0x43, 0, 0x77, 0, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]); // unsupported
    wire.extend([0x43, 0, 0x10, 0, 200, 0, 0, 0]); // oversize (payload skipped)
    wire.extend([0u8; 200]);
    wire.extend([0x43, 0, 0x13, 0, 4, 0, 0, 0, 1, 2, 3, 4]); // truncated payload
    c.on_bytes(&wire, at(1), &mut h, &mut a, &mut NoLlm);
    assert_eq!(
        text(&h),
        [
            "ERR 0x06\n",
            "ERR 0x05\n",
            "ERR 0x05\n",
            "ERR 0x02\n",
            "ERR 0x04\n",
            "ERR 0x01\n"
        ]
    );
    let ops: Vec<u16> = a.0.iter().map(|e| e.op).collect();
    let (allow, deny) = (Op::CtlAllow as u16, Op::CtlDeny as u16);
    assert_eq!(ops, [allow, deny, deny, deny, deny, deny]);
    assert_eq!(a.0[0].wcet_cycles, 25_000);
    assert_eq!(a.0[0].extra, audit_extra(0x10, 0x06, 1));
    assert_eq!(a.0[1].prompt_len, 14);
    assert_eq!(a.0[4].extra, audit_extra(0x10, 0x04, 5));
    let s = c.stats();
    assert_eq!((s.frames_rx, s.replies_tx, s.ok), (6, 6, 0));
    assert_eq!((s.auth_failures, s.audit_allow, s.audit_deny), (2, 1, 5));
    assert_eq!(s.err[5], 2);
    assert_eq!(c.latency().count(), 6);
}

#[test]
fn byte_by_byte_gives_the_same_replies() {
    let mut wire = Vec::new();
    for t in [SECRETS.admin, 7, SECRETS.submit] {
        wire.extend(infer(t));
        wire.extend(b"xx");
    }
    let (mut c1, mut h1, mut a1) = (ctl(), Host::default(), Audit::default());
    c1.on_bytes(&wire, at(0), &mut h1, &mut a1, &mut NoLlm);
    let (mut c2, mut h2, mut a2) = (ctl(), Host::default(), Audit::default());
    for b in &wire {
        c2.on_bytes(
            core::slice::from_ref(b),
            at(0),
            &mut h2,
            &mut a2,
            &mut NoLlm,
        );
    }
    assert_eq!(h1.lines, h2.lines);
    assert_eq!(a1.0, a2.0);
    assert_eq!(text(&h1), ["ERR 0x06\n", "ERR 0x05\n", "ERR 0x06\n"]);
}

#[test]
fn forwarded_reply_keeps_frame_order() {
    let mut c = ctl();
    let (mut h, mut a, mut llm) = (Host::default(), Audit::default(), Fwd::default());
    let mut wire = infer(SECRETS.submit);
    wire.extend(infer(0xbad));
    c.on_bytes(&wire, at(0), &mut h, &mut a, &mut llm);
    assert!(
        h.lines.is_empty(),
        "the bad-token reply waits behind the forwarded frame"
    );
    assert_eq!(c.pending(), 2);
    assert!(c.llm_reply(llm.0[0], b"OK id=1\n", &mut h));
    assert_eq!(text(&h), ["OK id=1\n", "ERR 0x05\n"]);
    assert_eq!(c.pending(), 0);
    assert!(!c.llm_reply(llm.0[0], b"OK id=1\n", &mut h));
    assert_eq!(c.stats().llm_orphans, 1);
    assert_eq!(c.stats().forwarded, 1);
}

#[test]
fn answered_at_once_by_the_link_is_allowed_and_ordered() {
    let mut c = ctl();
    let (mut h, mut a, mut llm) = (Host::default(), Audit::default(), Fwd::default());
    let mut wire = load(SECRETS.admin);
    wire.extend(frame(
        SECRETS.submit,
        Command::LlmInferPoll {
            infer_id: 9,
            max: None,
        },
    ));
    c.on_bytes(&wire, at(0), &mut h, &mut a, &mut llm);
    assert!(h.lines.is_empty());
    assert!(c.llm_reply(llm.0[0], b"OK\n", &mut h));
    assert_eq!(text(&h), ["OK\n", "OK id=9\n"]);
    assert_eq!(a.0[1].op, Op::CtlAllow as u16);
    assert_eq!(a.0[1].tokens, 9);
}

#[test]
fn silent_llm_times_out_with_unavailable() {
    let mut c = ctl();
    let (mut h, mut a, mut llm) = (Host::default(), Audit::default(), Fwd::default());
    c.on_bytes(&infer(SECRETS.admin), at(10), &mut h, &mut a, &mut llm);
    // An inference is acknowledged once admitted (after the running step).
    c.tick(at(10 + INFER_TIMEOUT_MS - 1), false, &mut h);
    assert!(h.lines.is_empty());
    c.tick(at(10 + INFER_TIMEOUT_MS), false, &mut h);
    assert_eq!(text(&h), ["ERR 0x06\n"]);
    // A load may take longer (the model is parsed before the acknowledgement).
    c.on_bytes(&load(SECRETS.admin), at(100), &mut h, &mut a, &mut llm);
    c.tick(at(100 + LOAD_TIMEOUT_MS - 1), false, &mut h);
    assert_eq!(h.lines.len(), 1);
    c.tick(at(100 + LOAD_TIMEOUT_MS), false, &mut h);
    assert_eq!(text(&h), ["ERR 0x06\n", "ERR 0x06\n"]);
    // The LLM partition going down answers every waiting frame at once.
    c.on_bytes(&load(SECRETS.admin), at(20_000), &mut h, &mut a, &mut llm);
    c.tick(at(20_001), true, &mut h);
    assert_eq!(h.lines.len(), 3);
    assert_eq!(c.stats().llm_timeouts, 3);
    assert!(!c.llm_reply(llm.0[2], b"OK\n", &mut h));
}

#[test]
fn full_fifo_answers_the_oldest_waiting_frame_busy() {
    let mut c = ctl();
    let (mut h, mut a, mut llm) = (Host::default(), Audit::default(), Fwd::default());
    for _ in 0..SLOTS + 1 {
        c.on_bytes(&infer(SECRETS.submit), at(0), &mut h, &mut a, &mut llm);
    }
    assert_eq!(text(&h), ["ERR 0x09\n"]);
    assert_eq!(c.stats().fifo_busy, 1);
    assert_eq!(c.pending(), SLOTS);
    assert!(c.llm_reply(llm.0[1], b"OK id=2\n", &mut h));
    assert_eq!(h.lines.len(), 2);
}

#[test]
fn stale_partial_frame_is_abandoned() {
    let mut c = ctl();
    let (mut h, mut a) = (Host::default(), Audit::default());
    let f = infer(SECRETS.submit);
    c.on_bytes(&f[..10], at(0), &mut h, &mut a, &mut NoLlm);
    c.on_bytes(&f, at(ABANDON_MS + 1), &mut h, &mut a, &mut NoLlm);
    assert_eq!(text(&h), ["ERR 0x06\n"]);
    assert_eq!(c.stats().abandoned, 1);
    assert_eq!(c.decoder_stats().abandoned_bytes, 10);
}

#[test]
fn no_secrets_refuses_everything_and_drops_are_counted() {
    let mut c = Control::new(None, zero_clock);
    let (mut h, mut a) = (
        Host {
            refuse: true,
            ..Host::default()
        },
        Audit::default(),
    );
    c.on_bytes(&load(SECRETS.admin), at(0), &mut h, &mut a, &mut NoLlm);
    let s = c.stats();
    assert_eq!((s.frames_rx, s.replies_tx, s.tx_dropped), (1, 0, 1));
    assert_eq!(a.0[0].op, Op::CtlDeny as u16);
}

#[test]
fn repeated_failures_rate_limit_even_valid_tokens() {
    let mut c = ctl();
    let (mut h, mut a) = (Host::default(), Audit::default());
    for _ in 0..5 {
        c.on_bytes(&infer(0x1), at(0), &mut h, &mut a, &mut NoLlm);
    }
    c.on_bytes(&infer(SECRETS.submit), at(1), &mut h, &mut a, &mut NoLlm);
    let t = text(&h);
    assert!(t[5].starts_with("ERR 0x07 retry_ms="), "{t:?}");
    assert_eq!(a.0.len(), 6);
    assert_eq!(a.0[5].op, Op::CtlDeny as u16);
}

fn v1_cancel(token: u64, seq: u32, id: u32) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let req = Request {
        version: Version::V1,
        token,
        seq,
        command: Command::LlmCancel { infer_id: id },
    };
    let n = encode(&req, &mut buf).unwrap();
    buf[..n].to_vec()
}

#[test]
fn v1_retry_is_answered_from_the_replay_cache_not_run_twice() {
    let mut c = ctl();
    let (mut h, mut a, mut llm) = (Host::default(), Audit::default(), Fwd::default());
    c.on_bytes(
        &v1_cancel(SECRETS.submit, 7, 3),
        at(0),
        &mut h,
        &mut a,
        &mut llm,
    );
    assert!(c.llm_reply(llm.0[0], b"OK\n", &mut h));
    // The reply was lost; the host retries the same request.
    c.on_bytes(
        &v1_cancel(SECRETS.submit, 7, 3),
        at(1),
        &mut h,
        &mut a,
        &mut llm,
    );
    assert_eq!(text(&h), ["OK\n", "OK\n"]);
    assert_eq!(llm.0.len(), 1, "forwarded once");
    assert_eq!(c.stats().replayed, 1);
    assert_eq!(a.0.len(), 2, "each frame audited once");
    // Another token with the same seq is not answered from the cache, nor is seq 0.
    c.on_bytes(
        &v1_cancel(SECRETS.admin, 7, 3),
        at(2),
        &mut h,
        &mut a,
        &mut llm,
    );
    c.on_bytes(
        &v1_cancel(SECRETS.submit, 0, 3),
        at(2),
        &mut h,
        &mut a,
        &mut llm,
    );
    assert_eq!(llm.0.len(), 3);
    // A transient refusal (timeout → ERR 0x06) is not replayed: the retry runs again.
    c.on_bytes(
        &v1_cancel(SECRETS.submit, 8, 3),
        at(3),
        &mut h,
        &mut a,
        &mut llm,
    );
    c.tick(at(3 + LLM_TIMEOUT_MS), false, &mut h);
    c.on_bytes(
        &v1_cancel(SECRETS.submit, 8, 3),
        at(4000),
        &mut h,
        &mut a,
        &mut llm,
    );
    assert_eq!(llm.0.len(), 5);
    // A bad token never reaches the cache (auth first).
    c.on_bytes(&v1_cancel(0xbad, 7, 3), at(4001), &mut h, &mut a, &mut llm);
    assert!(c.llm_reply(llm.0[4], b"OK\n", &mut h));
    let t = text(&h);
    assert_eq!(t[t.len() - 2..], ["OK\n", "ERR 0x05\n"]);
    assert_eq!(c.stats().replayed, 1);
}

#[test]
fn extra_lines_never_overtake_pending_replies() {
    let mut c = ctl();
    let (mut h, mut a, mut llm) = (Host::default(), Audit::default(), Fwd::default());
    // Nothing pending: out at once.
    assert!(c.send_extra(b"STREAM id=1 i=0 tok=a\n", &mut h));
    let mut wire = infer(SECRETS.submit);
    wire.extend(infer(SECRETS.submit));
    c.on_bytes(&wire, at(0), &mut h, &mut a, &mut llm);
    // The second inference is acknowledged and streams while the first still waits.
    assert!(c.llm_reply(llm.0[1], b"OK id=2\n", &mut h));
    assert!(c.send_extra(b"STREAM id=2 i=0 tok=x\n", &mut h));
    assert_eq!(h.lines.len(), 1);
    assert!(c.llm_reply(llm.0[0], b"OK id=1\n", &mut h));
    assert_eq!(
        text(&h),
        [
            "STREAM id=1 i=0 tok=a\n",
            "OK id=1\n",
            "OK id=2\n",
            "STREAM id=2 i=0 tok=x\n"
        ]
    );
    let s = c.stats();
    assert_eq!((s.replies_tx, s.extra_dropped, c.pending()), (2, 0, 0));
}

#[test]
fn refusals_are_not_kept_for_replay() {
    let mut c = ctl();
    let (mut h, mut a, mut llm) = (Host::default(), Audit::default(), Fwd::default());
    // A submit token may not load: refused, and the refusal is not cached...
    let mut buf = [0u8; MAX_FRAME_LEN];
    let req = Request {
        version: Version::V1,
        token: SECRETS.submit,
        seq: 5,
        command: Command::LlmLoad { wcet_cycles: None },
    };
    let n = encode(&req, &mut buf).unwrap();
    c.on_bytes(&buf[..n], at(0), &mut h, &mut a, &mut llm);
    // ...so the same token and seq on an allowed request runs it.
    c.on_bytes(
        &v1_cancel(SECRETS.submit, 5, 1),
        at(1),
        &mut h,
        &mut a,
        &mut llm,
    );
    assert_eq!(llm.0.len(), 1);
    assert_eq!(c.stats().replayed, 0);
    assert_eq!(text(&h), ["ERR 0x05\n"]);
}
