//! Building the system once per test process, before the first QEMU start.

use crate::command::run_command;
use crate::error::{Error, Result};
use crate::sis::workspace_root;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Upper bound on one `scripts/build.sh` run.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How many trailing lines of build output an error shows.
const BUILD_TAIL_LINES: usize = 60;

static BUILT: OnceLock<std::result::Result<(), String>> = OnceLock::new();

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs `scripts/build.sh` once for this test process (later calls return the first result).
/// Skipped when `SIS_E2E_NO_BUILD=1` (the caller has built). A failure carries the tail of the
/// build output.
pub fn build_once() -> Result<()> {
    BUILT
        .get_or_init(|| {
            if std::env::var_os("SIS_E2E_NO_BUILD").is_some_and(|v| v != "0") {
                return Ok(());
            }
            let script = workspace_root().join("scripts").join("build.sh");
            if !script.is_file() {
                return Err(format!("build script {} not found", script.display()));
            }
            let mut cmd = Command::new(&script);
            cmd.current_dir(workspace_root());
            match run_command(cmd, BUILD_TIMEOUT) {
                Ok(out) if out.success() => Ok(()),
                Ok(out) => Err(format!(
                    "{} failed (exit code {:?}):\n{}\n{}",
                    script.display(),
                    out.code,
                    last_lines(&out.stdout, BUILD_TAIL_LINES),
                    last_lines(&out.stderr, BUILD_TAIL_LINES)
                )),
                Err(e) => Err(e.to_string()),
            }
        })
        .clone()
        .map_err(Error::Start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_keeps_the_end() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a", 5), "a");
        assert_eq!(last_lines("", 5), "");
    }
}
