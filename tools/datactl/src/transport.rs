//! Connections to the datactl port: a UNIX socket (QEMU `-chardev socket,path=...`) or TCP
//! (`DATACTL_TCP=1`), with line reads bounded by a deadline.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Default UNIX socket path of the datactl port.
pub const DEFAULT_SOCKET: &str = "/tmp/sis-datactl.sock";

/// Longest reply line accepted; a longer one is a protocol error, not a memory hog.
pub const MAX_LINE: usize = 64 * 1024;

/// Where the datactl port is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A UNIX stream socket.
    Unix(PathBuf),
    /// A TCP `host:port`.
    Tcp(String),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// Why a connection attempt or transfer failed.
#[derive(Debug)]
pub enum TransportError {
    /// The UNIX socket path does not exist.
    NoSocket(Endpoint),
    /// Nobody is listening.
    Refused(Endpoint),
    /// The address could not be resolved or is malformed.
    BadAddress(String),
    /// Connecting took longer than the timeout.
    ConnectTimeout(Endpoint),
    /// The peer closed the connection.
    Closed,
    /// No complete line before the deadline.
    Timeout,
    /// A reply line longer than [`MAX_LINE`].
    LineTooLong,
    /// Any other I/O error.
    Io(io::Error),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::NoSocket(e) => write!(
                f,
                "{e}: socket does not exist; is SIS running? (start it with the run script; \
                 --datactl-socket PATH changes the path, DATACTL_TCP=1 switches to TCP: use --tcp HOST:PORT)"
            ),
            TransportError::Refused(e) => {
                write!(f, "{e}: connection refused (nothing is listening there)")
            }
            TransportError::BadAddress(a) => write!(f, "bad TCP address {a:?} (want HOST:PORT)"),
            TransportError::ConnectTimeout(e) => write!(f, "{e}: connect timed out"),
            TransportError::Closed => f.write_str("connection closed by the peer"),
            TransportError::Timeout => f.write_str("timed out waiting for a reply"),
            TransportError::LineTooLong => {
                write!(f, "reply line longer than {MAX_LINE} bytes")
            }
            TransportError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for TransportError {}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

/// An open connection with a buffer of received bytes not yet returned as lines.
pub struct Conn {
    stream: Stream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connect to `ep`, giving up after `timeout`.
    pub fn connect(ep: &Endpoint, timeout: Duration) -> Result<Conn, TransportError> {
        let map = |e: io::Error| match e.kind() {
            io::ErrorKind::NotFound => TransportError::NoSocket(ep.clone()),
            io::ErrorKind::ConnectionRefused => TransportError::Refused(ep.clone()),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                TransportError::ConnectTimeout(ep.clone())
            }
            _ => TransportError::Io(e),
        };
        let stream = match ep {
            Endpoint::Unix(path) => {
                if !path.exists() {
                    return Err(TransportError::NoSocket(ep.clone()));
                }
                Stream::Unix(UnixStream::connect(path).map_err(map)?)
            }
            Endpoint::Tcp(addr) => {
                let sa = addr
                    .to_socket_addrs()
                    .map_err(|_| TransportError::BadAddress(addr.clone()))?
                    .next()
                    .ok_or_else(|| TransportError::BadAddress(addr.clone()))?;
                let s = TcpStream::connect_timeout(&sa, timeout).map_err(map)?;
                s.set_nodelay(true).map_err(TransportError::Io)?;
                Stream::Tcp(s)
            }
        };
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    /// Write all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        let r = match &mut self.stream {
            Stream::Unix(s) => s.write_all(bytes).and_then(|_| s.flush()),
            Stream::Tcp(s) => s.write_all(bytes).and_then(|_| s.flush()),
        };
        r.map_err(|e| match e.kind() {
            io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted => TransportError::Closed,
            _ => TransportError::Io(e),
        })
    }

    /// The next line (without its `\n`), waiting at most until `deadline`.
    pub fn read_line(&mut self, deadline: Instant) -> Result<Vec<u8>, TransportError> {
        loop {
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=nl).collect();
                line.pop();
                return Ok(line);
            }
            if self.buf.len() > MAX_LINE {
                return Err(TransportError::LineTooLong);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(TransportError::Timeout);
            }
            let mut chunk = [0u8; 4096];
            let r = match &mut self.stream {
                Stream::Unix(s) => s
                    .set_read_timeout(Some(left))
                    .and_then(|_| s.read(&mut chunk)),
                Stream::Tcp(s) => s
                    .set_read_timeout(Some(left))
                    .and_then(|_| s.read(&mut chunk)),
            };
            match r {
                Ok(0) => return Err(TransportError::Closed),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(TransportError::Timeout)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(TransportError::Closed)
                }
                Err(e) => return Err(TransportError::Io(e)),
            }
        }
    }
}
