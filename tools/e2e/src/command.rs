//! Running host commands (such as `datactl`) with a time limit.

use crate::error::{Error, Result};
use crate::process::{kill_group, spawn_group, wait_bounded};
use crate::sis::workspace_root;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a finished host command returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandOutput {
    /// Exit code; `None` if it was ended by a signal.
    pub code: Option<i32>,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
    /// Wall time it took.
    pub elapsed: Duration,
}

impl CommandOutput {
    /// True if it exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

fn collect(mut r: impl Read + Send + 'static) -> (Arc<Mutex<Vec<u8>>>, JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buf);
    let h = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(&chunk[..n]);
        }
    });
    (buf, h)
}

fn text(buf: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

/// Runs `cmd` (stdin closed, output captured) in its own process group. If it has not finished
/// within `timeout`, the whole group is killed and [`Error::CommandTimeout`] carries the partial
/// output.
pub fn run_command(mut cmd: Command, timeout: Duration) -> Result<CommandOutput> {
    let line = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = spawn_group(&mut cmd, "host command")?;
    let (out, out_h) = collect(child.stdout.take().expect("stdout is piped"));
    let (err, err_h) = collect(child.stderr.take().expect("stderr is piped"));
    let status = wait_bounded(&mut child, timeout)?;
    let status = match status {
        Some(st) => st,
        None => {
            kill_group(&mut child, Duration::from_millis(200))?;
            let _ = out_h.join();
            let _ = err_h.join();
            return Err(Error::CommandTimeout {
                command: line,
                timeout,
                stdout: text(&out),
                stderr: text(&err),
            });
        }
    };
    let _ = out_h.join();
    let _ = err_h.join();
    Ok(CommandOutput {
        code: status.code(),
        stdout: text(&out),
        stderr: text(&err),
        elapsed: start.elapsed(),
    })
}

/// Finds the `datactl` binary: `$SIS_DATACTL` if set; otherwise next to the running test in the
/// same cargo profile directory, then `$CARGO_TARGET_DIR/{debug,release}`, then the workspace's
/// `target/{debug,release}`. The error lists every place tried.
pub fn datactl_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SIS_DATACTL") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Error::Start(format!(
                "SIS_DATACTL={} is not a file",
                p.display()
            )))
        };
    }
    let mut tried = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // Test binaries live in <target>/<profile>/deps/.
        if let Some(profile) = exe.parent().and_then(|d| d.parent()) {
            tried.push(profile.join("datactl"));
        }
    }
    let mut target_dirs = Vec::new();
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        target_dirs.push(PathBuf::from(t));
    }
    target_dirs.push(workspace_root().join("target"));
    for t in target_dirs {
        for profile in ["debug", "release"] {
            tried.push(t.join(profile).join("datactl"));
        }
    }
    tried.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        Error::Start(format!(
            "datactl binary not found (build it with `cargo build -p datactl`, or set \
             SIS_DATACTL); tried: {}",
            tried
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn captures_exit_code_and_output() {
        let out = run_command(
            sh("echo out; echo err >&2; exit 3"),
            Duration::from_secs(10),
        )
        .expect("runs");
        assert_eq!(out.code, Some(3));
        assert!(!out.success());
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
    }

    #[test]
    fn timeout_kills_the_group_and_keeps_partial_output() {
        let start = Instant::now();
        // The background sleep holds the pipes open; only a group kill ends it promptly.
        let e = run_command(
            sh("echo partial; sleep 30 & sleep 30"),
            Duration::from_millis(300),
        )
        .expect_err("must time out");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "kill was not prompt"
        );
        match e {
            Error::CommandTimeout { stdout, .. } => assert_eq!(stdout, "partial\n"),
            other => panic!("wrong error: {other}"),
        }
    }

    #[test]
    fn missing_program_is_an_error() {
        let e = run_command(
            Command::new("/nonexistent/sis-nothing"),
            Duration::from_secs(1),
        )
        .expect_err("cannot start");
        assert!(e.to_string().contains("/nonexistent/sis-nothing"), "{e}");
    }
}
