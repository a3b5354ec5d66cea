//! The real `datactl` binary: environment token, process exit codes.

use datactl::mock::{MockConfig, MockServer};
use datactl::transport::Endpoint;
use sis_frame::auth::Secrets;
use std::process::Command;

const SECRETS: Secrets = Secrets {
    admin: 0x00a1_0000_0000_0001,
    submit: 0x00b2_0000_0000_0002,
    ctl_key: 0x00c3_0000_0000_0003,
};

fn datactl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_datactl"));
    c.env_remove("SIS_TOKEN");
    c
}

#[test]
fn token_from_environment_and_exit_codes() {
    let m = MockServer::tcp(MockConfig::new(SECRETS)).unwrap();
    let Endpoint::Tcp(addr) = m.endpoint().clone() else {
        unreachable!()
    };
    let out = datactl()
        .args(["--tcp", &addr, "--wait-ack", "llm-load"])
        .env("SIS_TOKEN", "0x00a1000000000001")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, b"OK\n");
    let out = datactl()
        .args(["--tcp", &addr, "--wait-ack", "llm-load"])
        .env("SIS_TOKEN", "0x00b2000000000002")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stdout, b"ERR 0x05\n");
    // clap usage error.
    let out = datactl()
        .args(["llm-poll", "not-a-number"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // Missing socket.
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("none.sock");
    let out = datactl()
        .args([
            "--socket",
            sock.to_str().unwrap(),
            "--token",
            "1",
            "llm-load",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn bench_binary_runs_against_the_mock() {
    let out = Command::new(env!("CARGO_BIN_EXE_datactl-bench"))
        .args(["--mock", "--frames", "200", "--warmup", "5", "--json"])
        .env_remove("SIS_TOKEN")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("mock unix:") && lines[1].contains("mock tcp:"));
    assert!(lines.iter().all(|l| l.contains("\"frames\":200,")));
}
