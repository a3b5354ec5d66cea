//! Request/reply over a [`Conn`]: the ACK timeout, retries and reconnects.
//!
//! A request is sent, then the client waits up to the ACK timeout for the next reply line
//! (`OK...` or `ERR ...`; stray `STREAM`/`END` lines of an earlier stream are skipped). With
//! no reply in time the same frame is sent again, up to `retries` more times; a connection
//! the peer closed is reopened before the next attempt. A reply that arrives late for an
//! earlier attempt answers the same frame, so taking it is correct.

use crate::transport::{Conn, Endpoint, TransportError};
use std::fmt;
use std::time::{Duration, Instant};

/// Client settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// How long to wait for a reply before resending (the seed tool used 2 s).
    pub ack_timeout: Duration,
    /// Extra attempts after the first when no reply arrives in time.
    pub retries: u32,
}

/// Why a request failed.
#[derive(Debug)]
pub enum ClientError {
    /// Could not connect, or the connection broke with no attempts left.
    Connection(TransportError),
    /// No reply after every attempt.
    Timeout {
        /// Frames sent.
        attempts: u32,
        /// ACK timeout per attempt.
        ack_timeout: Duration,
    },
    /// The guest sent something that is not a valid reply.
    Protocol(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connection(e) => write!(f, "{e}"),
            ClientError::Timeout {
                attempts,
                ack_timeout,
            } => write!(
                f,
                "no reply after {attempts} attempt(s) of {} ms each (try --retries N or a longer --timeout-ms)",
                ack_timeout.as_millis()
            ),
            ClientError::Protocol(m) => write!(f, "protocol error: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Counters of one client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Frames written (including resends).
    pub frames_sent: u64,
    /// Resends after an ACK timeout.
    pub resends: u64,
    /// Reconnects after the peer closed the connection.
    pub reconnects: u64,
    /// Non-reply lines skipped while waiting for a reply.
    pub skipped_lines: u64,
}

/// A connected client.
pub struct Client {
    cfg: ClientConfig,
    conn: Option<Conn>,
    stats: ClientStats,
}

/// True for lines that answer a frame (`OK...`, `ERR ...`), as opposed to stream output.
pub fn is_reply_line(line: &[u8]) -> bool {
    line == b"OK" || line.starts_with(b"OK ") || line.starts_with(b"ERR ")
}

impl Client {
    /// Connect now, so connection problems are reported before anything is sent.
    pub fn connect(cfg: ClientConfig) -> Result<Client, ClientError> {
        let conn =
            Conn::connect(&cfg.endpoint, cfg.ack_timeout).map_err(ClientError::Connection)?;
        Ok(Client {
            cfg,
            conn: Some(conn),
            stats: ClientStats::default(),
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    fn conn(&mut self) -> Result<&mut Conn, ClientError> {
        if self.conn.is_none() {
            let c = Conn::connect(&self.cfg.endpoint, self.cfg.ack_timeout)
                .map_err(ClientError::Connection)?;
            self.stats.reconnects += 1;
            self.conn = Some(c);
        }
        Ok(self.conn.as_mut().expect("connected just above"))
    }

    /// Send bytes once, without waiting for anything.
    pub fn send(&mut self, frame: &[u8]) -> Result<(), ClientError> {
        let r = self.conn()?.send(frame);
        self.stats.frames_sent += 1;
        r.map_err(|e| {
            self.conn = None;
            ClientError::Connection(e)
        })
    }

    /// Send `frame` and return the reply line (without `\n`), resending on ACK timeouts.
    pub fn request(&mut self, frame: &[u8]) -> Result<Vec<u8>, ClientError> {
        let attempts = self.cfg.retries.saturating_add(1);
        let mut last_closed = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                self.stats.resends += 1;
            }
            match self.send(frame) {
                Ok(()) => {}
                Err(ClientError::Connection(TransportError::Closed)) => {
                    last_closed = Some(TransportError::Closed);
                    continue;
                }
                Err(e) => return Err(e),
            }
            let deadline = Instant::now() + self.cfg.ack_timeout;
            match self.read_reply(deadline) {
                Ok(line) => return Ok(line),
                Err(ClientError::Timeout { .. }) => {}
                Err(ClientError::Connection(TransportError::Closed)) => {
                    last_closed = Some(TransportError::Closed);
                }
                Err(e) => return Err(e),
            }
        }
        match last_closed {
            Some(e) => Err(ClientError::Connection(e)),
            None => Err(ClientError::Timeout {
                attempts,
                ack_timeout: self.cfg.ack_timeout,
            }),
        }
    }

    /// Wait until `deadline` for the next reply line, skipping stream output.
    pub fn read_reply(&mut self, deadline: Instant) -> Result<Vec<u8>, ClientError> {
        loop {
            let line = self.read_line(deadline)?;
            if is_reply_line(&line) {
                return Ok(line);
            }
            self.stats.skipped_lines += 1;
        }
    }

    /// Wait until `deadline` for the next line of any kind.
    pub fn read_line(&mut self, deadline: Instant) -> Result<Vec<u8>, ClientError> {
        let timeout = self.cfg.ack_timeout;
        let r = self.conn()?.read_line(deadline);
        r.map_err(|e| match e {
            TransportError::Timeout => ClientError::Timeout {
                attempts: 1,
                ack_timeout: timeout,
            },
            TransportError::LineTooLong => ClientError::Protocol(e.to_string()),
            other => {
                self.conn = None;
                ClientError::Connection(other)
            }
        })
    }
}
