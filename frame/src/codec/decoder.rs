//! The streaming decoder: a state machine fed arbitrary byte chunks that yields one
//! [`Event`] per frame it can delimit, in order.
//!
//! Synchronisation: the decoder scans for [`MAGIC`] followed by a known version byte; every
//! byte it passes over is counted as garbage. An unknown version byte after `'C'` is taken as
//! garbage too (the `'C'` is dropped and scanning resumes at the byte after it, so a `'C'` in
//! that position can still start a frame).
//!
//! Oversize frames: the payload is never buffered. When `len` is above the version's limit
//! but at most [`MAX_SKIP_LEN`], the decoder reports [`FrameError::Oversize`] at once and then
//! skips exactly `len` bytes, so an honest host that sent a too-long frame stays in sync and
//! its next frame is decoded normally. When `len` is above [`MAX_SKIP_LEN`] the header is
//! almost certainly corrupt (no host has a reason to send such a frame), and skipping up to
//! 4 GiB would make the channel deaf; the decoder still reports `Oversize` (it has delimited a
//! header) and then resyncs right after the header, counting whatever follows as garbage
//! until the next `'C'` + version.

use super::{
    parse_payload, FrameError, Request, Version, HEADER_LEN, MAGIC, MAX_PAYLOAD_V1, MAX_SKIP_LEN,
};

/// What the decoder produced for one delimited frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A well-formed request (borrowing the decoder's payload buffer).
    Request(Request<'a>),
    /// A delimited frame that is not a well-formed request; answer with `ERR` + its code.
    Rejected(Rejected),
}

/// A delimited frame that was refused, with the header fields that identify it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// Header version.
    pub version: Version,
    /// Header command byte.
    pub cmd: u8,
    /// Why it was refused.
    pub error: FrameError,
}

/// Counters kept by the decoder. Every byte fed ends up in exactly one of: a delimited frame,
/// `garbage_bytes`, `skipped_bytes`, `abandoned_bytes`, or the currently pending partial frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Frames that yielded a [`Event::Request`].
    pub requests: u64,
    /// Frames that yielded [`FrameError::BadFrame`].
    pub bad_frame: u64,
    /// Frames that yielded [`FrameError::Unsupported`].
    pub unsupported: u64,
    /// Frames that yielded [`FrameError::Oversize`].
    pub oversize: u64,
    /// Oversize frames whose `len` was above [`MAX_SKIP_LEN`], after which the decoder
    /// resynced instead of skipping.
    pub oversize_resyncs: u64,
    /// Bytes dropped while scanning for `'C'` + a known version.
    pub garbage_bytes: u64,
    /// Payload bytes of oversize frames skipped without buffering.
    pub skipped_bytes: u64,
    /// Bytes of partial frames dropped by [`Decoder::abandon_partial`].
    pub abandoned_bytes: u64,
    /// Header and payload bytes of delimited frames (including oversize headers).
    pub frame_bytes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Scanning for MAGIC.
    Sync,
    /// Collecting the header; `hfill` bytes present (at least the magic).
    Header,
    /// Collecting `need` payload bytes; `pfill` present.
    Payload,
    /// Skipping `skip` bytes of an oversize payload.
    Skip,
}

/// The streaming frame decoder. About 2.1 KiB; keep one per byte stream.
pub struct Decoder {
    state: State,
    header: [u8; HEADER_LEN],
    hfill: usize,
    version: Version,
    payload: [u8; MAX_PAYLOAD_V1],
    need: usize,
    pfill: usize,
    skip: u32,
    stats: DecoderStats,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

fn bump(counter: &mut u64, by: usize) {
    *counter = counter.saturating_add(by as u64);
}

impl Decoder {
    /// A decoder waiting for the start of a frame.
    pub const fn new() -> Self {
        Decoder {
            state: State::Sync,
            header: [0; HEADER_LEN],
            hfill: 0,
            version: Version::V0,
            payload: [0; MAX_PAYLOAD_V1],
            need: 0,
            pfill: 0,
            skip: 0,
            stats: DecoderStats {
                requests: 0,
                bad_frame: 0,
                unsupported: 0,
                oversize: 0,
                oversize_resyncs: 0,
                garbage_bytes: 0,
                skipped_bytes: 0,
                abandoned_bytes: 0,
                frame_bytes: 0,
            },
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// Bytes of a frame received so far but not yet delimited (0 when between frames).
    pub fn pending_bytes(&self) -> usize {
        match self.state {
            State::Sync => 0,
            State::Header => self.hfill,
            State::Payload => HEADER_LEN + self.pfill,
            State::Skip => 0,
        }
    }

    /// True while an oversize payload is being skipped.
    pub fn is_skipping(&self) -> bool {
        self.state == State::Skip
    }

    /// Drop a partial frame (or the rest of an oversize skip) and return to scanning. The
    /// guest calls this after an idle gap so a frame the host abandoned half-way cannot
    /// swallow the host's next frame. Returns the bytes dropped (also counted in
    /// [`DecoderStats::abandoned_bytes`]). No event is produced: the frame was never complete.
    pub fn abandon_partial(&mut self) -> usize {
        let dropped = self.pending_bytes();
        bump(&mut self.stats.abandoned_bytes, dropped);
        self.state = State::Sync;
        self.hfill = 0;
        self.pfill = 0;
        self.skip = 0;
        dropped
    }

    /// Feed bytes. Returns how many bytes of `input` were consumed and, if a frame was
    /// delimited, its event. The decoder stops right after a frame, so call it again with
    /// the rest of the input until it is all consumed:
    ///
    /// ```
    /// # use sis_frame::codec::{Decoder, Event};
    /// let mut dec = Decoder::new();
    /// let mut input: &[u8] = b"xxC\x00\x13\x00\x0c\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00";
    /// let mut events = 0;
    /// while !input.is_empty() {
    ///     let (used, ev) = dec.feed(input);
    ///     if let Some(Event::Request(req)) = ev {
    ///         events += 1;
    ///         assert_eq!(req.token, 1);
    ///     }
    ///     input = &input[used..];
    /// }
    /// assert_eq!((events, dec.stats().garbage_bytes), (1, 2));
    /// ```
    pub fn feed(&mut self, input: &[u8]) -> (usize, Option<Event<'_>>) {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Sync => match input[i..].iter().position(|&b| b == MAGIC) {
                    None => {
                        bump(&mut self.stats.garbage_bytes, input.len() - i);
                        i = input.len();
                    }
                    Some(pos) => {
                        bump(&mut self.stats.garbage_bytes, pos);
                        self.header[0] = MAGIC;
                        self.hfill = 1;
                        self.state = State::Header;
                        i += pos + 1;
                    }
                },
                State::Header => {
                    let b = input[i];
                    if self.hfill == 1 {
                        match Version::from_u8(b) {
                            Some(v) => self.version = v,
                            None => {
                                // The 'C' was garbage; rescan starting at this byte.
                                bump(&mut self.stats.garbage_bytes, 1);
                                self.state = State::Sync;
                                self.hfill = 0;
                                continue;
                            }
                        }
                    }
                    self.header[self.hfill] = b;
                    self.hfill += 1;
                    i += 1;
                    if self.hfill == HEADER_LEN {
                        self.hfill = 0;
                        if let Some(ev) = self.header_complete() {
                            return (i, Some(ev));
                        }
                        if self.state == State::Payload && self.need == 0 {
                            return (i, Some(self.payload_complete()));
                        }
                    }
                }
                State::Payload => {
                    let n = (self.need - self.pfill).min(input.len() - i);
                    self.payload[self.pfill..self.pfill + n].copy_from_slice(&input[i..i + n]);
                    self.pfill += n;
                    i += n;
                    if self.pfill == self.need {
                        return (i, Some(self.payload_complete()));
                    }
                }
                State::Skip => {
                    let n = (self.skip as usize).min(input.len() - i);
                    // n <= self.skip, which is a u32.
                    self.skip -= n as u32;
                    bump(&mut self.stats.skipped_bytes, n);
                    i += n;
                    if self.skip == 0 {
                        self.state = State::Sync;
                    }
                }
            }
        }
        (i, None)
    }

    /// The header is complete: either reject an oversize length (returning its event) or
    /// switch to collecting the payload.
    fn header_complete(&mut self) -> Option<Event<'static>> {
        let len = u32::from_le_bytes([
            self.header[4],
            self.header[5],
            self.header[6],
            self.header[7],
        ]);
        let cmd = self.header[2];
        if len as usize > self.version.max_payload() {
            bump(&mut self.stats.frame_bytes, HEADER_LEN);
            self.stats.oversize += 1;
            if len <= MAX_SKIP_LEN {
                self.state = State::Skip;
                self.skip = len;
            } else {
                self.stats.oversize_resyncs += 1;
                self.state = State::Sync;
            }
            return Some(Event::Rejected(Rejected {
                version: self.version,
                cmd,
                error: FrameError::Oversize { len },
            }));
        }
        self.state = State::Payload;
        self.need = len as usize;
        self.pfill = 0;
        None
    }

    /// The payload is complete: parse it and go back to scanning.
    fn payload_complete(&mut self) -> Event<'_> {
        self.state = State::Sync;
        bump(&mut self.stats.frame_bytes, HEADER_LEN + self.need);
        let (cmd, flags) = (self.header[2], self.header[3]);
        match parse_payload(self.version, cmd, flags, &self.payload[..self.need]) {
            Ok(req) => {
                self.stats.requests += 1;
                Event::Request(req)
            }
            Err(error) => {
                match error {
                    FrameError::BadFrame(_) => self.stats.bad_frame += 1,
                    FrameError::Unsupported => self.stats.unsupported += 1,
                    FrameError::Oversize { .. } => self.stats.oversize += 1,
                }
                Event::Rejected(Rejected {
                    version: self.version,
                    cmd,
                    error,
                })
            }
        }
    }
}
