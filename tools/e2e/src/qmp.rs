//! A minimal QMP (QEMU Machine Protocol) client: enough to start a paused machine once the
//! console is connected, and to ask QEMU for status or a clean quit.

use crate::error::{Error, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A QMP session in command mode.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects to a QMP socket, reads the greeting and enters command mode. Every read and write
    /// is bounded by `timeout`.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Qmp> {
        let stream = UnixStream::connect(path)
            .map_err(|e| Error::io(format!("connecting to QMP {}", path.display()), e))?;
        Qmp::from_stream(stream, timeout)
    }

    /// Starts a session over an already connected stream.
    pub fn from_stream(stream: UnixStream, timeout: Duration) -> Result<Qmp> {
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .map_err(|e| Error::io("setting QMP timeouts", e))?;
        let writer = stream
            .try_clone()
            .map_err(|e| Error::io("cloning QMP socket", e))?;
        let mut q = Qmp {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = q.read_message()?;
        if greeting.get("QMP").is_none() {
            return Err(Error::Qmp(format!("unexpected greeting {greeting}")));
        }
        q.execute("qmp_capabilities", None)?;
        Ok(q)
    }

    fn read_message(&mut self) -> Result<Value> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(|e| Error::io("reading from QMP", e))?;
        if n == 0 {
            return Err(Error::Qmp("connection closed by QEMU".into()));
        }
        serde_json::from_str(&line)
            .map_err(|e| Error::Qmp(format!("bad JSON from QEMU ({e}): {:?}", line.trim_end())))
    }

    /// Runs one command and returns its `return` value. Asynchronous events received meanwhile
    /// are skipped. A QMP error reply becomes [`Error::Qmp`] with QEMU's description.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value> {
        let mut msg = json!({ "execute": command });
        if let Some(a) = arguments {
            msg["arguments"] = a;
        }
        let mut text = msg.to_string();
        text.push('\n');
        self.writer
            .write_all(text.as_bytes())
            .map_err(|e| Error::io(format!("sending QMP {command}"), e))?;
        loop {
            let reply = self.read_message()?;
            if let Some(r) = reply.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = reply.get("error") {
                return Err(Error::Qmp(format!(
                    "{command} failed: {}",
                    e.get("desc")
                        .and_then(Value::as_str)
                        .unwrap_or("no description")
                )));
            }
            // Anything else is an event ({"event": ...}); keep reading.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    /// Answers like QEMU: greeting, an event before the reply, then the replies in `replies`.
    fn fake_qemu(replies: Vec<&'static str>) -> UnixStream {
        let (ours, theirs) = UnixStream::pair().expect("pair");
        std::thread::spawn(move || {
            let mut w = theirs.try_clone().expect("clone");
            let mut r = BufReader::new(theirs);
            writeln!(w, r#"{{"QMP": {{"version": {{}}, "capabilities": []}}}}"#).unwrap();
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert!(line.contains("qmp_capabilities"));
            writeln!(w, r#"{{"return": {{}}}}"#).unwrap();
            for reply in replies {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                writeln!(w, r#"{{"event": "RESUME", "timestamp": {{}}}}"#).unwrap();
                writeln!(w, "{reply}").unwrap();
            }
        });
        ours
    }

    #[test]
    fn executes_commands_and_skips_events() {
        let s = fake_qemu(vec![
            r#"{"return": {"status": "running", "running": true}}"#,
            r#"{"error": {"class": "GenericError", "desc": "no such thing"}}"#,
        ]);
        let mut q = Qmp::from_stream(s, Duration::from_secs(5)).expect("session");
        let st = q.execute("query-status", None).expect("status");
        assert_eq!(st["status"], "running");
        let e = q.execute("bogus", None).expect_err("error reply");
        assert!(e.to_string().contains("bogus failed: no such thing"), "{e}");
    }

    #[test]
    fn silence_is_bounded() {
        let (ours, _theirs) = UnixStream::pair().expect("pair");
        let e = Qmp::from_stream(ours, Duration::from_millis(100))
            .err()
            .expect("no greeting");
        assert!(e.to_string().contains("reading from QMP"), "{e}");
    }
}
