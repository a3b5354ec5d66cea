//! End-to-end tests of the CLI logic against the control guest's real host-control loop in
//! this process (the mock, UNIX and TCP).

use clap::Parser;
use datactl::bench::{percentile, run_bench, BenchConfig, FrameKind};
use datactl::cli::{exit, parse_hex, parse_token, run, Cli};
use datactl::mock::{MockConfig, MockServer};
use datactl::transport::Endpoint;
use sis_frame::auth::{RateLimitConfig, Secrets};
use std::io::{Read, Write};
use std::time::Duration;

const ADMIN: u64 = 0x00a1_0000_0000_0001;
const SUBMIT: u64 = 0x00b2_0000_0000_0002;
const KEY: u64 = 0x00c3_0000_0000_0003;

fn secrets() -> Secrets {
    Secrets {
        admin: ADMIN,
        submit: SUBMIT,
        ctl_key: KEY,
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn endpoint_args(ep: &Endpoint) -> Vec<String> {
    match ep {
        Endpoint::Unix(p) => vec!["--socket".into(), p.display().to_string()],
        Endpoint::Tcp(a) => vec!["--tcp".into(), a.clone()],
    }
}

fn datactl(ep: &Endpoint, args: &[&str]) -> Out {
    let mut argv: Vec<String> = vec!["datactl".into()];
    argv.extend(endpoint_args(ep));
    argv.extend(args.iter().map(|s| s.to_string()));
    let cli = Cli::try_parse_from(&argv).expect("valid command line");
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let code = run(&cli, &mut o, &mut e);
    Out {
        code,
        stdout: String::from_utf8(o).unwrap(),
        stderr: String::from_utf8(e).unwrap(),
    }
}

fn tok(t: u64) -> String {
    format!("{t:#x}")
}

fn unix_mock(cfg: MockConfig) -> (tempfile::TempDir, MockServer) {
    let dir = tempfile::tempdir().unwrap();
    let m = MockServer::unix(dir.path().join("datactl.sock"), cfg).unwrap();
    (dir, m)
}

#[test]
fn load_needs_admin_over_unix() {
    let (_d, m) = unix_mock(MockConfig::new(secrets()));
    let ep = m.endpoint().clone();
    let r = datactl(&ep, &["--token", &tok(SUBMIT), "--wait-ack", "llm-load"]);
    assert_eq!((r.code, r.stdout.as_str()), (exit::ERR_REPLY, "ERR 0x05\n"));
    assert!(r.stderr.contains("authentication failed"), "{}", r.stderr);
    let r = datactl(
        &ep,
        &[
            "--token",
            &tok(ADMIN),
            "--wait-ack",
            "llm-load",
            "--wcet-cycles",
            "25000",
        ],
    );
    assert_eq!((r.code, r.stdout.as_str()), (exit::OK, "OK\n"));
    // Embedded-rights admin token works too.
    let embedded = (1u64 << 56) | (KEY & ((1 << 56) - 1));
    let r = datactl(&ep, &["--token", &tok(embedded), "--wait-ack", "llm-load"]);
    assert_eq!(r.code, exit::OK);
}

#[test]
fn infer_poll_cancel_over_tcp() {
    let m = MockServer::tcp(MockConfig::new(secrets())).unwrap();
    let ep = m.endpoint().clone();
    let sub = tok(SUBMIT);
    let r = datactl(
        &ep,
        &["--token", &sub, "--wait-ack", "llm-infer", "why op b slow?"],
    );
    assert_eq!((r.code, r.stdout.as_str()), (exit::ERR_REPLY, "ERR 0x03\n"));
    assert_eq!(
        datactl(&ep, &["--token", &tok(ADMIN), "--wait-ack", "llm-load"]).code,
        0
    );
    let r = datactl(
        &ep,
        &[
            "--token",
            &sub,
            "--wait-ack",
            "llm-infer",
            "why op b slow?",
            "--max-tokens",
            "4",
        ],
    );
    // The refused inference used id 1 (the guest never reuses an id).
    assert_eq!((r.code, r.stdout.as_str()), (exit::OK, "OK id=2\n"));
    let r = datactl(
        &ep,
        &["--token", &sub, "--wait-ack", "llm-poll", "2", "--max", "2"],
    );
    assert_eq!(
        r.stdout,
        "OK TOK id=2 n=2 done=0 plen=14 model=llm items=Op| B\n"
    );
    let r = datactl(
        &ep,
        &["--token", &sub, "--wait-ack", "llm-poll", "2", "--text"],
    );
    assert_eq!((r.code, r.stdout.as_str()), (exit::OK, " waited on\n"));
    assert!(r.stderr.contains("done=1"), "{}", r.stderr);
    // A finished job: the guest answers OK at once (nothing left to stop).
    let r = datactl(&ep, &["--token", &sub, "--wait-ack", "llm-cancel", "2"]);
    assert_eq!((r.code, r.stdout.as_str()), (exit::OK, "OK\n"));
    // A job the LLM partition does not know.
    let r = datactl(&ep, &["--token", &sub, "--wait-ack", "llm-cancel", "9"]);
    assert_eq!((r.code, r.stdout.as_str()), (exit::ERR_REPLY, "ERR 0x08\n"));
    assert_eq!(m.stats().connections, 7);
}

#[test]
fn poll_escapes_survive_the_round_trip() {
    let m = MockServer::tcp(MockConfig::new(secrets())).unwrap();
    let ep = m.endpoint().clone();
    datactl(&ep, &["--token", &tok(ADMIN), "--wait-ack", "llm-load"]);
    datactl(
        &ep,
        &["--token", &tok(ADMIN), "--wait-ack", "llm-infer", "x"],
    );
    let r = datactl(
        &ep,
        &["--token", &tok(ADMIN), "--wait-ack", "llm-poll", "1"],
    );
    // The canned output ends with "|" and "\n" items, escaped on the wire.
    assert!(r.stdout.ends_with("lock|\\||\\n\n"), "{}", r.stdout);
    let r = datactl(
        &ep,
        &[
            "--token",
            &tok(ADMIN),
            "--wait-ack",
            "llm-poll",
            "1",
            "--text",
        ],
    );
    assert_eq!(r.stdout, "\n", "everything was delivered by the first poll");
}

#[test]
fn stream_prints_tokens_until_end() {
    let (_d, m) = unix_mock(MockConfig::new(secrets()));
    let ep = m.endpoint().clone();
    datactl(&ep, &["--token", &tok(ADMIN), "--wait-ack", "llm-load"]);
    let r = datactl(
        &ep,
        &[
            "--token",
            &tok(SUBMIT),
            "llm-infer",
            "why?",
            "--stream",
            "--max-tokens",
            "6",
            "--temp",
            "0.7",
            "--seed",
            "42",
        ],
    );
    assert_eq!(r.code, exit::OK, "{}", r.stderr);
    assert_eq!(r.stdout, "Op B waited on a lock\n");
    assert!(r.stderr.contains("n=6 reason=max"), "{}", r.stderr);
}

#[test]
fn chat_holds_one_session_across_turns() {
    let (_d, m) = unix_mock(MockConfig::new(secrets()));
    let ep = m.endpoint().clone();
    datactl(&ep, &["--token", &tok(ADMIN), "--wait-ack", "llm-load"]);
    let r = datactl(
        &ep,
        &[
            "--token",
            &tok(SUBMIT),
            "chat",
            "--max-tokens",
            "2",
            "--system",
            "Be brief.",
            "first",
            "second",
        ],
    );
    assert_eq!(r.code, exit::OK, "{}", r.stderr);
    assert_eq!(r.stdout, "Op B\nOp B\n", "one reply line per turn");
    let turns: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("datactl: turn "))
        .collect();
    assert_eq!(turns.len(), 2, "{}", r.stderr);
    // The first turn opened a session; the second continued the same one.
    let session = |l: &str| l.rsplit("session=").next().unwrap().to_string();
    assert_eq!(session(turns[0]), session(turns[1]), "{}", r.stderr);
    assert!(turns[1].starts_with("datactl: turn 2: prompt 0 tokens, 0 reused, 0 computed"));
}

#[test]
fn retries_resend_after_a_dropped_frame() {
    let mut cfg = MockConfig::new(secrets());
    cfg.drop_first = 1;
    let (_d, m) = unix_mock(cfg);
    let ep = m.endpoint().clone();
    let r = datactl(
        &ep,
        &[
            "--token",
            &tok(ADMIN),
            "--retries",
            "2",
            "--timeout-ms",
            "150",
            "llm-load",
        ],
    );
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (exit::OK, "OK\n"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("1 resend"), "{}", r.stderr);
    let s = m.stats();
    assert_eq!((s.frames, s.dropped), (2, 1));
}

#[test]
fn no_reply_after_all_retries_is_a_timeout() {
    let mut cfg = MockConfig::new(secrets());
    cfg.drop_first = 100;
    let m = MockServer::tcp(cfg).unwrap();
    let ep = m.endpoint().clone();
    let r = datactl(
        &ep,
        &[
            "--token",
            &tok(ADMIN),
            "--retries",
            "2",
            "--timeout-ms",
            "100",
            "llm-load",
        ],
    );
    assert_eq!(r.code, exit::TIMEOUT);
    assert!(
        r.stderr.contains("no reply after 3 attempt"),
        "{}",
        r.stderr
    );
    assert_eq!(m.stats().frames, 3);
}

#[test]
fn connection_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let missing = Endpoint::Unix(dir.path().join("nope.sock"));
    let r = datactl(&missing, &["--token", "1", "llm-load"]);
    assert_eq!(r.code, exit::CONNECTION);
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
    // A socket file with nobody listening.
    let path = dir.path().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let r = datactl(&Endpoint::Unix(path), &["--token", "1", "llm-load"]);
    assert_eq!(r.code, exit::CONNECTION);
    assert!(r.stderr.contains("connection refused"), "{}", r.stderr);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = datactl(
        &Endpoint::Tcp(format!("127.0.0.1:{port}")),
        &["--token", "1", "llm-load"],
    );
    assert_eq!(r.code, exit::CONNECTION);
    assert!(r.stderr.contains("connection refused"), "{}", r.stderr);
    let r = datactl(
        &Endpoint::Tcp("not an address".into()),
        &["--token", "1", "llm-load"],
    );
    assert_eq!(r.code, exit::CONNECTION);
    assert!(r.stderr.contains("bad TCP address"), "{}", r.stderr);
}

#[test]
fn usage_errors_exit_2_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let ep = Endpoint::Unix(dir.path().join("nope.sock"));
    let r = datactl(&ep, &["llm-load"]);
    assert_eq!(r.code, exit::USAGE);
    assert!(r.stderr.contains("no token"), "{}", r.stderr);
    let long = "x".repeat(3000);
    let r = datactl(&ep, &["--token", "1", "llm-infer", &long]);
    assert_eq!(r.code, exit::USAGE);
    assert!(r.stderr.contains("prompt too long"), "{}", r.stderr);
    let r = datactl(
        &ep,
        &["--token", "1", "--proto", "0", "llm-infer", "hi", "--chat"],
    );
    assert_eq!(r.code, exit::USAGE);
    assert!(r.stderr.contains("version-1"), "{}", r.stderr);
    for bad in [
        ["--temp", "9"],
        ["--temp", "NaN"],
        ["--top-p", "1.001"],
        ["--top-p", "1.5"],
        ["--min-p", "2"],
        ["--repeat-penalty", "0"],
        ["--repeat-penalty", "11"],
    ] {
        let r = datactl(&ep, &["--token", "1", "llm-infer", "hi", bad[0], bad[1]]);
        assert_eq!(r.code, exit::USAGE, "{bad:?}");
    }
    let r = datactl(&ep, &["raw", "--hex", "43 0"]);
    assert_eq!(r.code, exit::USAGE);
    for argv in [
        vec!["datactl", "--token", "0xzz", "llm-load"],
        vec!["datactl", "llm-infer", "x", "--max-tokens", "0"],
        vec!["datactl", "bogus"],
        vec!["datactl", "llm-infer", "x", "--seed", "4294967296"],
        vec!["datactl", "llm-infer", "x", "--top-k", "x"],
        vec!["datactl", "llm-infer", "x", "--repeat-last-n", "-1"],
        vec!["datactl", "--tcp", "a:1", "--socket", "/x", "llm-load"],
    ] {
        let e = Cli::try_parse_from(&argv).unwrap_err();
        assert_eq!(e.exit_code(), exit::USAGE, "{argv:?}");
    }
}

#[test]
fn sampling_controls_reach_the_frame() {
    use sis_frame::codec::{Decoder, Event, Sampling, Version};
    let decode = |args: &[&str]| {
        let mut argv = vec!["datactl", "--token", "1", "llm-infer", "hi"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(&argv).unwrap();
        let bytes = datactl::cli::build_frame(&cli).unwrap();
        let mut dec = Decoder::new();
        match dec.feed(&bytes).1 {
            Some(Event::Request(r)) => match r.command {
                sis_frame::codec::Command::LlmInferStart(p) => (r.version, p.sampling),
                c => panic!("{c:?}"),
            },
            e => panic!("{e:?}"),
        }
    };
    // Greedy stays a v0 frame.
    assert_eq!(decode(&[]), (Version::V0, Sampling::GREEDY));
    // A temperature alone: llama.cpp's defaults for the rest.
    let (v, s) = decode(&["--temp", "0.8", "--seed", "42"]);
    assert_eq!(v, Version::V1);
    assert_eq!(
        s,
        Sampling {
            temperature_milli: 800,
            top_k: 40,
            top_p_milli: 950,
            min_p_milli: 50,
            seed: 42,
            ..Sampling::GREEDY
        }
    );
    // Every control.
    let (_, s) = decode(&[
        "--temp",
        "1.5",
        "--top-k",
        "7",
        "--top-p",
        "0.5",
        "--min-p",
        "0.1",
        "--repeat-penalty",
        "1.3",
        "--repeat-last-n",
        "8",
        "--seed",
        "4294967295",
    ]);
    assert_eq!(
        s,
        Sampling {
            temperature_milli: 1500,
            top_p_milli: 500,
            seed: u64::from(u32::MAX),
            top_k: 7,
            min_p_milli: 100,
            repeat_penalty_milli: 1300,
            repeat_last_n: 8,
        }
    );
    // Greedy with a repeat penalty needs v1 and its sampling block.
    let (v, s) = decode(&["--repeat-penalty", "1.3"]);
    assert_eq!(
        (v, s.temperature_milli, s.repeat_penalty_milli),
        (Version::V1, 0, 1300)
    );
}

#[test]
fn a_system_message_needs_chat_and_reaches_the_frame() {
    use sis_frame::codec::{Command, Decoder, Event};
    let cli = Cli::try_parse_from([
        "datactl",
        "--token",
        "1",
        "llm-infer",
        "hi",
        "--chat",
        "--system",
        "Be brief.",
    ])
    .unwrap();
    let bytes = datactl::cli::build_frame(&cli).unwrap();
    match Decoder::new().feed(&bytes).1 {
        Some(Event::Request(r)) => match r.command {
            Command::LlmInferStart(p) => assert_eq!((p.chat, p.system), (true, "Be brief.")),
            c => panic!("{c:?}"),
        },
        e => panic!("{e:?}"),
    }
    assert!(Cli::try_parse_from(["datactl", "llm-infer", "hi", "--system", "x"]).is_err());
    let long = "s".repeat(257);
    let cli = Cli::try_parse_from([
        "datactl",
        "--token",
        "1",
        "llm-infer",
        "hi",
        "--chat",
        "--system",
        &long,
    ])
    .unwrap();
    assert!(datactl::cli::build_frame(&cli)
        .unwrap_err()
        .contains("system message"));
}

#[test]
fn inferences_wait_longer_for_their_admission() {
    let parse = |a: &[&str]| Cli::try_parse_from(a).unwrap().ack_timeout_ms();
    assert_eq!(parse(&["datactl", "llm-infer", "hi"]), 12_000);
    assert_eq!(parse(&["datactl", "chat", "hi"]), 12_000);
    assert_eq!(parse(&["datactl", "llm-poll", "1"]), 2_000);
    assert_eq!(
        parse(&["datactl", "--timeout-ms", "500", "llm-infer", "hi"]),
        500
    );
}

#[test]
fn stop_strings_reach_the_frame() {
    use sis_frame::codec::{Command, Decoder, Event, Version};
    let cli = Cli::try_parse_from([
        "datactl",
        "--token",
        "1",
        "llm-infer",
        "hi",
        "--stop",
        "\n\n",
        "--stop",
        "User:",
    ])
    .unwrap();
    let bytes = datactl::cli::build_frame(&cli).unwrap();
    match Decoder::new().feed(&bytes).1 {
        Some(Event::Request(r)) => match r.command {
            Command::LlmInferStart(p) => {
                assert_eq!(r.version, Version::V1, "stop strings need v1");
                assert_eq!(p.stop.as_slice(), ["\n\n", "User:"]);
            }
            c => panic!("{c:?}"),
        },
        e => panic!("{e:?}"),
    }
    for bad in [
        vec!["--stop", ""],
        vec![
            "--stop", "a", "--stop", "b", "--stop", "c", "--stop", "d", "--stop", "e",
        ],
    ] {
        let mut argv = vec!["datactl", "--token", "1", "llm-infer", "hi"];
        argv.extend(bad);
        let cli = Cli::try_parse_from(&argv).unwrap();
        assert!(datactl::cli::build_frame(&cli)
            .unwrap_err()
            .contains("--stop"));
    }
}

#[test]
fn long_prompts_use_v1_automatically() {
    let m = MockServer::tcp(MockConfig::new(secrets())).unwrap();
    let ep = m.endpoint().clone();
    datactl(&ep, &["--token", &tok(ADMIN), "--wait-ack", "llm-load"]);
    // Longer than a v0 frame carries (54 bytes), within what the ring carries (1024).
    let long = "why ".repeat(250);
    let r = datactl(
        &ep,
        &["--token", &tok(ADMIN), "--wait-ack", "llm-infer", &long],
    );
    assert_eq!(r.code, exit::OK, "{}", r.stderr);
    let r = datactl(
        &ep,
        &[
            "--token",
            &tok(ADMIN),
            "--wait-ack",
            "llm-poll",
            "1",
            "--max",
            "1",
        ],
    );
    assert!(r.stdout.contains(" plen=1000 "), "{}", r.stdout);
}

#[test]
fn raw_frames_and_send_without_wait() {
    let (_d, m) = unix_mock(MockConfig::new(secrets()));
    let ep = m.endpoint().clone();
    let r = datactl(
        &ep,
        &[
            "--wait-ack",
            "raw",
            "--hex",
            "43 00 7f 00 08000000 0000000000000000",
        ],
    );
    assert_eq!((r.code, r.stdout.as_str()), (exit::ERR_REPLY, "ERR 0x02\n"));
    let r = datactl(
        &ep,
        &["--wait-ack", "raw", "--hex", "0x43:0x00:0x10:0x00:41000000"],
    );
    assert_eq!((r.code, r.stdout.as_str()), (exit::ERR_REPLY, "ERR 0x04\n"));
    let r = datactl(&ep, &["--token", &tok(ADMIN), "llm-load"]);
    assert_eq!(r.code, exit::OK);
    assert!(
        r.stderr.contains("sent 8 bytes") || r.stderr.contains("sent 16 bytes"),
        "{}",
        r.stderr
    );
}

#[test]
fn repeated_bad_tokens_get_rate_limited() {
    let mut cfg = MockConfig::new(secrets());
    cfg.limits = RateLimitConfig {
        max_failures: 3,
        window_ms: 60_000,
        base_backoff_ms: 60_000,
        max_backoff_ms: 60_000,
    };
    let m = MockServer::tcp(cfg).unwrap();
    let ep = m.endpoint().clone();
    for _ in 0..3 {
        let r = datactl(&ep, &["--token", "0x1234", "--wait-ack", "llm-load"]);
        assert_eq!(r.stdout, "ERR 0x05\n");
    }
    let r = datactl(&ep, &["--token", &tok(ADMIN), "--wait-ack", "llm-load"]);
    assert_eq!(r.code, exit::ERR_REPLY);
    assert!(r.stdout.starts_with("ERR 0x07 retry_ms="), "{}", r.stdout);
    assert!(r.stderr.contains("rate limited"), "{}", r.stderr);
}

/// A server that answers every read with a fixed line.
fn fixed_reply_server(reply: &'static [u8]) -> Endpoint {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let mut buf = [0u8; 256];
            if s.read(&mut buf).unwrap_or(0) > 0 {
                let _ = s.write_all(reply);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    Endpoint::Tcp(addr.to_string())
}

#[test]
fn malformed_replies_are_protocol_errors() {
    let ep = fixed_reply_server(b"HELLO there\n");
    let r = datactl(
        &ep,
        &[
            "--token",
            "1",
            "--timeout-ms",
            "100",
            "--wait-ack",
            "llm-load",
        ],
    );
    // "HELLO" is not a reply line, so it is skipped (and reported) and the wait times out.
    assert_eq!(r.code, exit::TIMEOUT);
    assert!(r.stderr.contains("ignored 1 line"), "{}", r.stderr);
    let ep = fixed_reply_server(b"OK TOK id=1 n=3 done=1 plen=1 model=m items=a\n");
    let r = datactl(&ep, &["--token", "1", "--wait-ack", "llm-poll", "1"]);
    assert_eq!(r.code, exit::PROTOCOL, "{}", r.stderr);
    let ep = fixed_reply_server(b"OK id=1\n");
    let r = datactl(
        &ep,
        &[
            "--token",
            "1",
            "--timeout-ms",
            "100",
            "llm-infer",
            "x",
            "--stream",
            "--idle-timeout-ms",
            "100",
        ],
    );
    assert_eq!(r.code, exit::TIMEOUT, "{}", r.stderr);
    assert!(r.stderr.contains("giving up"), "{}", r.stderr);
}

#[test]
fn closed_connection_is_a_connection_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        // Accept and close at once, twice (first attempt and the reconnect).
        for _ in 0..2 {
            if let Ok((s, _)) = l.accept() {
                drop(s);
            }
        }
    });
    let r = datactl(
        &Endpoint::Tcp(addr.to_string()),
        &["--token", "1", "--retries", "1", "--wait-ack", "llm-load"],
    );
    assert_eq!(r.code, exit::CONNECTION, "{}", r.stderr);
}

#[test]
fn global_options_may_follow_the_subcommand() {
    let m = MockServer::tcp(MockConfig::new(secrets())).unwrap();
    let Endpoint::Tcp(addr) = m.endpoint().clone() else {
        unreachable!()
    };
    let admin = tok(ADMIN);
    let argv = [
        "datactl",
        "llm-load",
        "--wcet-cycles",
        "5",
        "--tcp",
        &addr,
        "--token",
        &admin,
        "--wait-ack",
    ];
    let cli = Cli::try_parse_from(argv).unwrap();
    let (mut o, mut e) = (Vec::new(), Vec::new());
    assert_eq!(run(&cli, &mut o, &mut e), exit::OK);
    assert_eq!(o, b"OK\n");
}

#[test]
fn token_and_hex_parsing() {
    assert_eq!(parse_token("0x10"), Ok(16));
    assert_eq!(
        parse_token("0X0100_0000_0000_0001"),
        Ok(0x0100_0000_0000_0001)
    );
    assert_eq!(parse_token("42"), Ok(42));
    assert!(parse_token("0x1_0000_0000_0000_0000").is_err());
    assert!(parse_token("-1").is_err());
    assert_eq!(parse_hex("43 00:0x10,ff"), Ok(vec![0x43, 0, 0x10, 0xff]));
    assert!(parse_hex("").is_err());
    assert!(parse_hex("4").is_err());
    assert!(parse_hex("zz").is_err());
}

#[test]
fn bench_measures_against_the_mock() {
    let (_d, m) = unix_mock(MockConfig::new(secrets()));
    for (window, kind) in [(1, FrameKind::Poll), (8, FrameKind::Unsupported)] {
        let r = run_bench(&BenchConfig {
            endpoint: m.endpoint().clone(),
            token: Some(SUBMIT),
            frames: 300,
            warmup: 10,
            window,
            timeout: Duration::from_secs(2),
            kind,
            infer_id: 99,
        })
        .unwrap();
        assert_eq!((r.frames, r.err, r.ok), (300, 300, 0));
        assert_eq!(r.latencies_us.len(), 300);
        assert!(r.latency_us(50) <= r.latency_us(99));
        assert!(r.frames_per_sec() > 0.0);
        assert!(r.json("x").starts_with("{\"label\":\"x\",\"frames\":300,"));
    }
    assert_eq!(m.stats().frames, 620);
    let missing_token = run_bench(&BenchConfig {
        endpoint: m.endpoint().clone(),
        token: None,
        frames: 1,
        warmup: 0,
        window: 1,
        timeout: Duration::from_secs(1),
        kind: FrameKind::Poll,
        infer_id: 0,
    });
    assert!(missing_token.unwrap_err().contains("needs --token"));
}

#[test]
fn percentiles_use_nearest_rank() {
    let v: Vec<u64> = (1..=100).collect();
    assert_eq!(percentile(&v, 50), 50);
    assert_eq!(percentile(&v, 99), 99);
    assert_eq!(percentile(&v, 100), 100);
    assert_eq!(percentile(&v, 0), 1);
    assert_eq!(percentile(&[7], 99), 7);
    assert_eq!(percentile(&[], 50), 0);
}

#[test]
fn v1_retry_after_a_lost_reply_is_answered_from_the_replay_cache() {
    let mut cfg = MockConfig::new(secrets());
    // Frames: 0 load (lost), 1 its retry, 2 v1 infer (lost), 3 its retry, 4 v0 infer,
    // 5 v0 infer (lost), 6 its retry.
    cfg.lose_replies_of = vec![0, 2, 5];
    let m = MockServer::tcp(cfg).unwrap();
    let ep = m.endpoint().clone();
    let admin = tok(ADMIN);
    let args = [
        "--token",
        admin.as_str(),
        "--retries",
        "1",
        "--timeout-ms",
        "150",
    ];
    let r = datactl(&ep, &[&args[..], &["--proto", "1", "llm-load"]].concat());
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (exit::OK, "OK\n"),
        "{}",
        r.stderr
    );
    let r = datactl(
        &ep,
        &[&args[..], &["--proto", "1", "llm-infer", "hi"]].concat(),
    );
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (exit::OK, "OK id=1\n"),
        "{}",
        r.stderr
    );
    // The inference ran once: the next one gets id 2.
    let r = datactl(&ep, &["--token", &admin, "--wait-ack", "llm-infer", "hi"]);
    assert_eq!(r.stdout, "OK id=2\n");
    // v0 has no seq: the retry of a request whose reply was lost runs it again.
    let r = datactl(
        &ep,
        &[&args[..], &["--proto", "0", "llm-infer", "hi"]].concat(),
    );
    assert_eq!(r.stdout, "OK id=4\n");
    assert_eq!(m.stats().dropped, 3);
}
