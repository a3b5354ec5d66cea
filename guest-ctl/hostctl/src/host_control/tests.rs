//! The whole path of a host request: frame → loop → ring request → response → reply, with a
//! recording ring and a hand-driven LLM partition.

use super::*;
use shared_ring::audit::AuditEntry;
use shared_ring::message::{Bytes, Done, DoneStatus, ErrorCode as RingError};
use shared_ring::Request as RingRequest;
use sis_frame::auth::{RateLimitConfig, Secrets};
use sis_frame::codec::{
    encode, Command, InferParams, Request, Sampling, Stops, Version, MAX_FRAME_LEN,
};
use std::string::String;
use std::vec::Vec;

use crate::link::{SendRefused, JOB_IDLE_MS};

const SECRETS: Secrets = Secrets {
    admin: 0xa11ce,
    submit: 0x5ab,
    ctl_key: 0x9f12_3456_789a_bcde,
};

#[derive(Default)]
struct Host(Vec<String>);

impl HostOut for Host {
    fn send_line(&mut self, line: &[u8]) -> bool {
        self.0.push(String::from_utf8(line.to_vec()).unwrap());
        true
    }
}

struct NoAudit;

impl AuditOut for NoAudit {
    fn append(&mut self, _e: &AuditEntry) -> bool {
        true
    }
}

/// Records what is published; refuses with `refuse` when set.
#[derive(Default)]
struct Ring {
    sent: Vec<(u64, RingRequest)>,
    refuse: Option<SendRefused>,
}

impl RingPort for Ring {
    fn send(&mut self, req: &RingRequest) -> Result<u64, SendRefused> {
        if let Some(r) = self.refuse {
            return Err(r);
        }
        let seq = 100 + self.sent.len() as u64;
        self.sent.push((seq, req.clone()));
        Ok(seq)
    }

    fn entropy(&mut self) -> Option<u64> {
        Some(0x5e55_1000 + self.sent.len() as u64)
    }
}

fn zero_clock() -> u64 {
    0
}

fn host_control() -> HostControl {
    let mut h = HostControl::new(zero_clock);
    h.set_auth(Authenticator::new(SECRETS, RateLimitConfig::DEFAULT).unwrap());
    h
}

fn at(ms: u64) -> Now {
    Now { ms, us: ms * 1000 }
}

fn frame(version: Version, command: Command<'_>) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let req = Request {
        version,
        token: SECRETS.admin,
        seq: 0,
        command,
    };
    let n = encode(&req, &mut buf).unwrap();
    buf[..n].to_vec()
}

fn infer(stream: bool, max_tokens: u16) -> Vec<u8> {
    frame(
        if stream { Version::V1 } else { Version::V0 },
        Command::LlmInferStart(InferParams {
            prompt: "why op b slow?",
            max_tokens,
            sampling: Sampling::GREEDY,
            chat: false,
            stream,
            stop: Stops::NONE,
            system: "",
            session: None,
        }),
    )
}

fn tokens(id: u32, text: &str) -> Response {
    Response::Tokens {
        id,
        n: 1,
        text: Bytes::from_slice(text.as_bytes()).unwrap(),
    }
}

fn done(id: u32, tokens: u32, status: u8) -> Response {
    Response::Done(Done {
        id,
        tokens,
        prompt_len: 0,
        elapsed_ns: 0,
        cycles: 0,
        status: DoneStatus(status),
        error: None,
        reused: 0,
    })
}

/// Sends `bytes`, returns the ring sequence number of what they published.
fn send(h: &mut HostControl, ring: &mut Ring, host: &mut Host, bytes: &[u8], ms: u64) -> u64 {
    h.on_bytes(bytes, at(ms), host, &mut NoAudit, ring);
    ring.sent.last().map_or(0, |(s, _)| *s)
}

#[test]
fn infer_acked_then_polled_from_the_tokens_that_came_back() {
    let (mut h, mut ring, mut host) = (host_control(), Ring::default(), Host::default());
    let seq = send(&mut h, &mut ring, &mut host, &infer(false, 2), 0);
    let RingRequest::Infer(r) = &ring.sent[0].1 else {
        panic!("{:?}", ring.sent)
    };
    assert_eq!(
        (r.id, r.max_tokens, r.prompt.as_str()),
        (1, 2, "why op b slow?")
    );
    assert!(r.flags.stream() && !r.flags.host_stream());
    assert!(host.0.is_empty(), "waits for the LLM partition");
    h.on_response(Response::Ack { req_seq: seq }, at(1), &mut host);
    h.on_response(tokens(1, "Op"), at(2), &mut host);
    h.on_response(tokens(1, " B"), at(2), &mut host);
    h.on_response(done(1, 2, DoneStatus::OK), at(3), &mut host);
    let poll = frame(
        Version::V0,
        Command::LlmInferPoll {
            infer_id: 1,
            max: None,
        },
    );
    send(&mut h, &mut ring, &mut host, &poll, 4);
    assert_eq!(
        host.0,
        [
            "OK id=1\n",
            "OK TOK id=1 n=2 done=1 end=max plen=14 model=llm items=Op| B\n"
        ]
    );
    assert_eq!(ring.sent.len(), 1, "poll is served locally");
    let (ls, js, running) = h.link_stats();
    assert_eq!((ls.sent, ls.responses, js.started, running), (1, 4, 1, 0));
}

#[test]
fn sampling_and_stop_strings_reach_the_ring() {
    let (mut h, mut ring, mut host) = (host_control(), Ring::default(), Host::default());
    let sampling = Sampling {
        temperature_milli: 800,
        top_p_milli: 500,
        seed: 7,
        top_k: 40,
        min_p_milli: 50,
        repeat_penalty_milli: 1300,
        repeat_last_n: 8,
    };
    let f = frame(
        Version::V1,
        Command::LlmInferStart(InferParams {
            prompt: "p",
            max_tokens: 4,
            sampling,
            chat: true,
            stream: true,
            stop: Stops::new(&["\n\n", "User:"]).unwrap(),
            system: "Be brief.",
            session: None,
        }),
    );
    send(&mut h, &mut ring, &mut host, &f, 0);
    let RingRequest::Infer(r) = &ring.sent[0].1 else {
        panic!("{:?}", ring.sent)
    };
    assert_eq!(r.sampling, crate::link::ring_sampling(&sampling));
    assert_eq!(
        (
            r.sampling.temp.0,
            r.sampling.top_k,
            r.sampling.top_p.0,
            r.sampling.min_p.0
        ),
        (800, 40, 500, 50)
    );
    assert_eq!(
        (
            r.sampling.repeat_penalty.0,
            r.sampling.repeat_last_n,
            r.sampling.seed
        ),
        (1300, 8, 7)
    );
    let stops: Vec<&str> = r.stop.iter().map(|s| s.as_str()).collect();
    assert_eq!(stops, ["\n\n", "User:"]);
    assert!(r.flags.chat() && r.flags.host_stream());
    assert_eq!(r.system.as_str(), "Be brief.");
}

#[test]
fn streamed_infer_gets_stream_lines_and_an_end() {
    let (mut h, mut ring, mut host) = (host_control(), Ring::default(), Host::default());
    let seq = send(&mut h, &mut ring, &mut host, &infer(true, 2), 0);
    // Tokens before the Ack wait behind the pending reply: never ahead of `OK id=`.
    h.on_response(tokens(1, "Op"), at(1), &mut host);
    assert!(host.0.is_empty());
    h.on_response(Response::Ack { req_seq: seq }, at(1), &mut host);
    h.on_response(tokens(1, " B"), at(2), &mut host);
    h.on_response(done(1, 2, DoneStatus::OK), at(3), &mut host);
    assert_eq!(
        host.0,
        [
            "OK id=1\n",
            "STREAM id=1 i=0 tok=Op\n",
            "STREAM id=1 i=1 tok= B\n",
            "END id=1 n=2 reason=max\n"
        ]
    );
}

#[test]
fn ring_errors_and_refusals_become_reply_codes() {
    let (mut h, mut ring, mut host) = (host_control(), Ring::default(), Host::default());
    let seq = send(&mut h, &mut ring, &mut host, &infer(false, 4), 0);
    h.on_response(
        Response::Error {
            req_seq: seq,
            code: RingError::NoModel,
        },
        at(1),
        &mut host,
    );
    // The refused job is forgotten: polling it is an unknown id.
    let poll = frame(
        Version::V0,
        Command::LlmInferPoll {
            infer_id: 1,
            max: None,
        },
    );
    send(&mut h, &mut ring, &mut host, &poll, 2);
    ring.refuse = Some(SendRefused::Unreachable);
    send(&mut h, &mut ring, &mut host, &infer(false, 4), 3);
    ring.refuse = Some(SendRefused::RingFull);
    send(&mut h, &mut ring, &mut host, &infer(false, 4), 4);
    assert_eq!(
        host.0,
        ["ERR 0x03\n", "ERR 0x08\n", "ERR 0x06\n", "ERR 0x09\n"]
    );
    let (ls, js, running) = h.link_stats();
    assert_eq!((ls.unreachable, ls.ring_full, running), (1, 1, 0));
    assert_eq!(js.started, 3);
    // A response nobody waits for is counted and changes nothing.
    h.on_response(Response::Ack { req_seq: 999 }, at(5), &mut host);
    assert_eq!(h.link_stats().0.unmatched, 1);
    assert_eq!(host.0.len(), 4);
}

#[test]
fn a_job_failing_after_its_ack_says_why_in_poll_and_end() {
    let (mut h, mut ring, mut host) = (host_control(), Ring::default(), Host::default());
    let seq = send(&mut h, &mut ring, &mut host, &infer(false, 4), 0);
    h.on_response(Response::Ack { req_seq: seq }, at(1), &mut host);
    h.on_response(tokens(1, "Op"), at(2), &mut host);
    let failed = |id| {
        Response::Done(Done {
            id,
            tokens: 1,
            prompt_len: 3,
            elapsed_ns: 0,
            cycles: 0,
            status: DoneStatus(DoneStatus::REJECT),
            error: Some(RingError::Internal),
            reused: 0,
        })
    };
    h.on_response(failed(1), at(3), &mut host);
    let poll = frame(
        Version::V0,
        Command::LlmInferPoll {
            infer_id: 1,
            max: None,
        },
    );
    send(&mut h, &mut ring, &mut host, &poll, 4);
    let seq = send(&mut h, &mut ring, &mut host, &infer(true, 4), 5);
    h.on_response(Response::Ack { req_seq: seq }, at(6), &mut host);
    h.on_response(failed(2), at(7), &mut host);
    assert_eq!(
        host.0,
        [
            "OK id=1\n",
            "OK TOK id=1 n=1 done=1 end=fail code=0x0a plen=14 model=llm items=Op\n",
            "OK id=2\n",
            "END id=2 n=0 reason=fail code=0x0a\n"
        ]
    );
}

#[test]
fn prompt_too_long_for_the_context_is_err_0x0b() {
    let (mut h, mut ring, mut host) = (host_control(), Ring::default(), Host::default());
    let seq = send(&mut h, &mut ring, &mut host, &infer(false, 4), 0);
    h.on_response(
        Response::Error {
            req_seq: seq,
            code: RingError::ContextFull,
        },
        at(1),
        &mut host,
    );
    assert_eq!(host.0, ["ERR 0x0b\n"]);
}

#[test]
fn cancel_goes_over_the_ring_unless_the_job_is_over() {
    let (mut h, mut ring, mut host) = (host_control(), Ring::default(), Host::default());
    let seq = send(&mut h, &mut ring, &mut host, &infer(true, 8), 0);
    h.on_response(Response::Ack { req_seq: seq }, at(1), &mut host);
    let cancel = frame(Version::V1, Command::LlmCancel { infer_id: 1 });
    let seq = send(&mut h, &mut ring, &mut host, &cancel, 2);
    assert!(matches!(ring.sent[1].1, RingRequest::Cancel { id: 1 }));
    h.on_response(Response::Ack { req_seq: seq }, at(3), &mut host);
    h.on_response(done(1, 0, DoneStatus::OK), at(4), &mut host);
    // Over now: answered at once, nothing published.
    send(&mut h, &mut ring, &mut host, &cancel, 5);
    assert_eq!(ring.sent.len(), 2);
    assert_eq!(
        host.0,
        ["OK id=1\n", "OK\n", "END id=1 n=0 reason=cancel\n", "OK\n"]
    );
}

#[test]
fn a_restart_or_stop_of_the_llm_vm_fails_waiting_frames_at_once() {
    let (mut h, mut ring, mut host) = (host_control(), Ring::default(), Host::default());
    h.tick(at(0), LlmState::Running { generation: 1 }, &mut host);
    send(&mut h, &mut ring, &mut host, &infer(false, 4), 1);
    // Same generation, before the deadline: still waiting.
    h.tick(at(10), LlmState::Running { generation: 1 }, &mut host);
    assert!(host.0.is_empty());
    // A new generation lost the request.
    h.tick(at(20), LlmState::Running { generation: 2 }, &mut host);
    assert_eq!(host.0, ["ERR 0x06\n"]);
    send(&mut h, &mut ring, &mut host, &infer(false, 4), 30);
    h.tick(at(40), LlmState::Stopped, &mut host);
    assert_eq!(host.0, ["ERR 0x06\n", "ERR 0x06\n"]);
    // Without a hypervisor only the deadline counts.
    send(&mut h, &mut ring, &mut host, &infer(false, 4), 50);
    h.tick(at(60), LlmState::Unknown, &mut host);
    assert_eq!(host.0.len(), 2);
    h.tick(
        at(50 + crate::control::INFER_TIMEOUT_MS),
        LlmState::Unknown,
        &mut host,
    );
    assert_eq!(host.0.len(), 3);
    assert_eq!(h.control().stats().llm_timeouts, 3);
}

#[test]
fn jobs_end_fail_at_once_when_the_llm_vm_stops() {
    let (mut h, mut ring, mut host) = (host_control(), Ring::default(), Host::default());
    h.tick(at(0), LlmState::Running { generation: 1 }, &mut host);
    let seq = send(&mut h, &mut ring, &mut host, &infer(false, 8), 1);
    h.on_response(Response::Ack { req_seq: seq }, at(2), &mut host);
    h.on_response(tokens(1, "Op"), at(3), &mut host);
    let seq = send(&mut h, &mut ring, &mut host, &infer(true, 8), 4);
    h.on_response(Response::Ack { req_seq: seq }, at(5), &mut host);
    // Stopped: both end now, long before JOB_IDLE_MS.
    h.tick(at(10), LlmState::Stopped, &mut host);
    let poll = frame(
        Version::V0,
        Command::LlmInferPoll {
            infer_id: 1,
            max: None,
        },
    );
    send(&mut h, &mut ring, &mut host, &poll, 11);
    assert_eq!(
        host.0,
        [
            "OK id=1\n",
            "OK id=2\n",
            "END id=2 n=0 reason=fail code=0x06\n",
            "OK TOK id=1 n=1 done=1 end=fail code=0x06 plen=14 model=llm items=Op\n"
        ]
    );
    assert_eq!(h.link_stats().2, 0, "nothing runs any more");
}

#[test]
fn the_first_generation_seen_is_not_a_restart() {
    let (mut h, mut ring, mut host) = (host_control(), Ring::default(), Host::default());
    send(&mut h, &mut ring, &mut host, &infer(false, 4), 0);
    h.tick(at(10), LlmState::Running { generation: 7 }, &mut host);
    assert!(host.0.is_empty());
}

#[test]
fn jobs_the_llm_partition_abandoned_end_with_fail() {
    let (mut h, mut ring, mut host) = (host_control(), Ring::default(), Host::default());
    let seq = send(&mut h, &mut ring, &mut host, &infer(true, 8), 0);
    h.on_response(Response::Ack { req_seq: seq }, at(1), &mut host);
    h.on_response(tokens(1, "Op"), at(2), &mut host);
    h.tick(at(JOB_IDLE_MS), LlmState::Unknown, &mut host);
    assert_eq!(host.0.len(), 2, "not idle long enough yet");
    h.tick(at(JOB_IDLE_MS + 1000), LlmState::Unknown, &mut host);
    assert_eq!(
        host.0,
        [
            "OK id=1\n",
            "STREAM id=1 i=0 tok=Op\n",
            "END id=1 n=1 reason=fail code=0x06\n"
        ]
    );
    assert_eq!(h.link_stats().2, 0);
}
