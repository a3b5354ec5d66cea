//! The harness's error type. Messages are written for a person reading a failed test.

use crate::source::Source;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Result alias used throughout the harness.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong while driving the system.
///
/// `Debug` prints the same text as `Display`, so `unwrap()` and tests returning `Result` show the
/// full message, including the console tail.
pub enum Error {
    /// A bounded wait ended without a match.
    Timeout {
        /// The source that was watched.
        source: Source,
        /// What was expected (pattern description).
        expected: String,
        /// How long the wait lasted.
        waited: Duration,
        /// The last lines of that source's view.
        tail: String,
        /// Where the full console log is (kept when the test fails).
        log: Option<PathBuf>,
    },
    /// The console connection ended (QEMU exited or closed the socket) before a match.
    Closed {
        /// The source that was watched.
        source: Source,
        /// What was expected.
        expected: String,
        /// Why the connection ended.
        reason: String,
        /// The last lines of that source's view.
        tail: String,
        /// Where the full console log is (kept when the test fails).
        log: Option<PathBuf>,
    },
    /// Output that must not appear did appear.
    Unexpected {
        /// The source that was watched.
        source: Source,
        /// The forbidden pattern.
        pattern: String,
        /// The text that matched it.
        matched: String,
        /// The last lines of that source's view.
        tail: String,
        /// Where the full console log is (kept when the test fails).
        log: Option<PathBuf>,
    },
    /// A regular expression did not compile.
    BadPattern(String),
    /// The caller asked for something impossible (for example a line with control characters,
    /// or focusing the untagged stream). Nothing was sent.
    BadInput(String),
    /// An I/O error, with what was being done.
    Io {
        /// What the harness was doing.
        context: String,
        /// The underlying error.
        error: std::io::Error,
    },
    /// Starting the system failed (script missing, QEMU exited early, socket never appeared).
    Start(String),
    /// A QMP exchange failed or QEMU answered with an error.
    Qmp(String),
    /// A host command (such as `datactl`) did not finish in time; it was killed.
    CommandTimeout {
        /// The command line.
        command: String,
        /// The time limit.
        timeout: Duration,
        /// What it had printed on stdout.
        stdout: String,
        /// What it had printed on stderr.
        stderr: String,
    },
}

impl Error {
    /// Wraps an I/O error with context.
    pub fn io(context: impl Into<String>, error: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            error,
        }
    }
}

fn write_tail(
    f: &mut fmt::Formatter<'_>,
    source: Source,
    tail: &str,
    log: &Option<PathBuf>,
) -> fmt::Result {
    if tail.is_empty() {
        write!(f, "\n  ({source} printed nothing)")?;
    } else {
        write!(f, "\n  last lines of {source}:")?;
        for line in tail.lines() {
            write!(f, "\n  | {line}")?;
        }
    }
    if let Some(p) = log {
        write!(f, "\n  full console log: {}", p.display())?;
    }
    Ok(())
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Timeout {
                source,
                expected,
                waited,
                tail,
                log,
            } => {
                write!(
                    f,
                    "timed out after {waited:?} waiting for {expected} on {source}"
                )?;
                write_tail(f, *source, tail, log)
            }
            Error::Closed {
                source,
                expected,
                reason,
                tail,
                log,
            } => {
                write!(
                    f,
                    "console closed ({reason}) while waiting for {expected} on {source}"
                )?;
                write_tail(f, *source, tail, log)
            }
            Error::Unexpected {
                source,
                pattern,
                matched,
                tail,
                log,
            } => {
                write!(
                    f,
                    "{source} printed {matched:?}, which must not appear ({pattern})"
                )?;
                write_tail(f, *source, tail, log)
            }
            Error::BadPattern(m) => write!(f, "bad pattern: {m}"),
            Error::BadInput(m) => write!(f, "bad input: {m}"),
            Error::Io { context, error } => write!(f, "{context}: {error}"),
            Error::Start(m) => write!(f, "could not start the system: {m}"),
            Error::Qmp(m) => write!(f, "QMP: {m}"),
            Error::CommandTimeout {
                command,
                timeout,
                stdout,
                stderr,
            } => write!(
                f,
                "`{command}` did not finish within {timeout:?} and was killed\n  stdout: {stdout:?}\n  stderr: {stderr:?}"
            ),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_message_names_pattern_source_and_tail() {
        let e = Error::Timeout {
            source: Source::Llm,
            expected: "text \"done\"".into(),
            waited: Duration::from_millis(250),
            tail: "a\nb\n".into(),
            log: Some("/tmp/x/console.log".into()),
        };
        let s = format!("{e:?}");
        assert!(s.contains("waiting for text \"done\" on llm"), "{s}");
        assert!(s.contains("  | a\n  | b"), "{s}");
        assert!(s.contains("250ms"), "{s}");
        assert!(s.ends_with("full console log: /tmp/x/console.log"), "{s}");
    }

    #[test]
    fn empty_tail_says_so() {
        let e = Error::Closed {
            source: Source::Hv,
            expected: "x".into(),
            reason: "EOF".into(),
            tail: String::new(),
            log: None,
        };
        assert!(e.to_string().contains("(hv printed nothing)"));
    }
}
