//! The single-producer/single-consumer ring of fixed-size slots.
//!
//! Ring layout (offsets from the ring's base, see `docs/ring.md`):
//!
//! | bytes      | contents                                                        |
//! |------------|-----------------------------------------------------------------|
//! | 0..8       | head (written by the producer)                                  |
//! | 128..136   | tail (written by the consumer)                                  |
//! | 256..288   | producer counters: sent, full, too_large, corrupt_tail          |
//! | 384..432   | consumer counters: received, rejected by reason (5 words)       |
//! | 512..      | `capacity` slots of `slot_size` bytes: seq, len, payload words  |
//!
//! Each of the four groups has a 128-byte block to itself (a 64-byte line plus the adjacent
//! line some cores prefetch with it), so bumping a counter, even in a spin on a full ring, never
//! disturbs the line the peer polls.
//!
//! Head and tail are free-running 64-bit positions; slot `pos & (capacity - 1)` holds the message
//! with sequence number `pos`. Each side keeps its own index privately and only *publishes* it;
//! what it reads from the peer is validated before use.

use crate::counters::{ConsumerStats, ProducerStats, RejectReason};
use crate::mem::{Mem, Ordering};
use crate::slot_writer::SlotWriter;
use core::marker::PhantomData;
use serde::{de::DeserializeOwned, Serialize};

/// Largest slot, header included.
pub const MAX_SLOT_SIZE: usize = 2048;
/// Bytes of each slot taken by its header (sequence word and length word).
pub const SLOT_HEADER: usize = 16;
/// Largest payload any slot can carry.
pub const MAX_PAYLOAD: usize = MAX_SLOT_SIZE - SLOT_HEADER;
/// Bytes of a ring's control block (producer line, consumer line) before its slots.
pub const RING_CONTROL: usize = 512;

/// Word offsets inside a ring's control block.
pub(crate) mod word {
    pub const HEAD: usize = 0;
    pub const TAIL: usize = 16;
    pub const SENT: usize = 32;
    pub const FULL: usize = 33;
    pub const TOO_LARGE: usize = 34;
    pub const CORRUPT_TAIL: usize = 35;
    pub const RECEIVED: usize = 48;
    pub const REJECTED: usize = 49;
    pub const SLOTS: usize = super::RING_CONTROL / 8;
}

/// Positions (sequence numbers) are below this. A producer starts at 0 and counts up by one, so
/// it never gets there; `init` stamps unwritten slots with "the lap before 0" (wrapping, so at or
/// above this limit), which therefore never matches a position the consumer will accept.
pub const POS_LIMIT: u64 = 1 << 63;

/// A buffer large enough for any slot payload.
pub type FrameBuf = [u8; MAX_PAYLOAD];

/// Validated geometry of one ring inside a region, in words.
#[derive(Clone, Debug)]
pub(crate) struct RingView<M> {
    pub(crate) mem: M,
    pub(crate) base: usize,
    pub(crate) cap: u64,
    pub(crate) slot_words: usize,
}

impl<M: Mem> RingView<M> {
    fn idx(&self, w: usize) -> usize {
        self.base + w
    }
    fn slot(&self, pos: u64) -> usize {
        self.base + word::SLOTS + ((pos & (self.cap - 1)) as usize) * self.slot_words
    }
    pub(crate) fn payload_max(&self) -> usize {
        (self.slot_words - 2) * 8
    }
    pub(crate) fn word_index(&self, w: usize) -> usize {
        self.idx(w)
    }
    pub(crate) fn slot_index(&self, pos: u64) -> usize {
        self.slot(pos)
    }

    /// Writes the ring's initial state: zero counters and indices, every slot stamped with the
    /// sequence number of the lap before position 0 so none of them passes as written.
    pub(crate) fn reset(&self) {
        for w in 0..word::SLOTS {
            self.mem.store(self.idx(w), 0, Ordering::Relaxed);
        }
        for i in 0..self.cap {
            let s = self.slot(i);
            self.mem
                .store(s, i.wrapping_sub(self.cap), Ordering::Relaxed);
            self.mem.store(s + 1, 0, Ordering::Relaxed);
        }
    }

    /// Reads the published indices and counters (for monitors; values are whatever the peers
    /// last wrote and are not validated).
    pub(crate) fn snapshot(&self) -> RingSnapshot {
        let l = |w| self.mem.load(self.idx(w), Ordering::Relaxed);
        let mut rejected = [0u64; RejectReason::COUNT];
        for (i, r) in rejected.iter_mut().enumerate() {
            *r = l(word::REJECTED + i);
        }
        RingSnapshot {
            capacity: self.cap,
            slot_size: (self.slot_words * 8) as u64,
            head: l(word::HEAD),
            tail: l(word::TAIL),
            producer: ProducerStats {
                sent: l(word::SENT),
                full: l(word::FULL),
                too_large: l(word::TOO_LARGE),
                corrupt_tail: l(word::CORRUPT_TAIL),
            },
            consumer: ConsumerStats {
                received: l(word::RECEIVED),
                rejected: crate::counters::RejectCounts(rejected),
            },
        }
    }
}

/// What a monitor sees of one ring: published indices and both sides' published counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingSnapshot {
    /// Number of slots.
    pub capacity: u64,
    /// Bytes per slot.
    pub slot_size: u64,
    /// Published head (next sequence number the producer will write).
    pub head: u64,
    /// Published tail (next sequence number the consumer will read).
    pub tail: u64,
    /// Producer counters.
    pub producer: ProducerStats,
    /// Consumer counters.
    pub consumer: ConsumerStats,
}

/// Why a send was refused. Nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// Every slot holds an unread message (back-pressure; retry after the consumer drains).
    Full,
    /// The encoded message does not fit the ring's slot payload.
    TooLarge,
    /// The consumer's published tail is impossible (behind what it was, or past the head); the
    /// peer is corrupt or was reset and the ring must be attached again.
    CorruptTail,
}

/// A rejected slot: it was consumed and skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// Ring position of the rejected slot (for [`RejectReason::BadIndex`], the head resynced to).
    pub pos: u64,
    /// Why.
    pub reason: RejectReason,
}

/// A message taken from a ring, with its sequence number.
#[derive(Clone, Debug, PartialEq)]
pub struct Received<T> {
    /// Sequence number (ring position) the producer gave it.
    pub seq: u64,
    /// The decoded message.
    pub msg: T,
}

/// The sending end of a ring carrying messages of type `T`.
///
/// After a successful send the caller rings the peer's doorbell (the hypervisor's doorbell
/// hypercall); the ring itself never traps.
#[derive(Debug)]
pub struct Producer<T, M> {
    ring: RingView<M>,
    head: u64,
    cached_tail: u64,
    stats: ProducerStats,
    _msg: PhantomData<fn(&T)>,
}

impl<T, M: Mem> Producer<T, M> {
    /// Builds the producer side over a validated ring, resuming at the published head if it is
    /// consistent with the published tail.
    pub(crate) fn new(ring: RingView<M>) -> Result<Self, SendError> {
        let head = ring.mem.load(ring.idx(word::HEAD), Ordering::Relaxed);
        let tail = ring.mem.load(ring.idx(word::TAIL), Ordering::Acquire);
        if head >= POS_LIMIT || head.wrapping_sub(tail) > ring.cap {
            return Err(SendError::CorruptTail);
        }
        Ok(Self {
            ring,
            head,
            cached_tail: tail,
            stats: ProducerStats::default(),
            _msg: PhantomData,
        })
    }

    /// Counters of this side.
    pub fn stats(&self) -> ProducerStats {
        self.stats
    }

    /// Number of slots.
    pub fn capacity(&self) -> u64 {
        self.ring.cap
    }

    /// Largest payload one message may encode to.
    pub fn max_payload(&self) -> usize {
        self.ring.payload_max()
    }

    /// Sequence number the next message will carry.
    pub fn next_seq(&self) -> u64 {
        self.head
    }

    /// Encodes `msg` with postcard straight into the next slot and publishes it. Returns its
    /// sequence number.
    ///
    /// # Errors
    /// [`SendError`]; on error nothing is published and the matching counter is bumped.
    pub fn send(&mut self, msg: &T) -> Result<u64, SendError>
    where
        T: Serialize,
    {
        self.reserve()?;
        let s = self.ring.slot(self.head);
        let w = SlotWriter::new(&self.ring.mem, s + 2, self.ring.payload_max());
        match postcard::serialize_with_flavor(msg, w) {
            Ok(len) => Ok(self.publish(s, len)),
            Err(_) => Err(self.refuse(SendError::TooLarge)),
        }
    }

    /// Publishes raw payload bytes as one message (tests, benchmarks, other encodings).
    ///
    /// # Errors
    /// [`SendError`]; on error nothing is published and the matching counter is bumped.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<u64, SendError> {
        if bytes.len() > self.ring.payload_max() {
            return Err(self.refuse(SendError::TooLarge));
        }
        self.reserve()?;
        let s = self.ring.slot(self.head);
        self.ring.mem.write_bytes(s + 2, bytes);
        Ok(self.publish(s, bytes.len()))
    }

    /// Stamps the slot at word `s` (payload already written) and publishes it with a release
    /// store of the head.
    #[inline]
    fn publish(&mut self, s: usize, len: usize) -> u64 {
        let mem = &self.ring.mem;
        mem.store(s, self.head, Ordering::Relaxed);
        mem.store(s + 1, len as u64, Ordering::Relaxed);
        let seq = self.head;
        self.head = self.head.wrapping_add(1);
        mem.store(self.ring.idx(word::HEAD), self.head, Ordering::Release);
        self.stats.sent = self.stats.sent.wrapping_add(1);
        mem.store(
            self.ring.idx(word::SENT),
            self.stats.sent,
            Ordering::Relaxed,
        );
        seq
    }

    /// Makes sure the slot at `head` is free, re-reading the consumer's tail only when the
    /// cached one says the ring is full.
    #[inline]
    fn reserve(&mut self) -> Result<(), SendError> {
        let cap = self.ring.cap;
        if self.head.wrapping_sub(self.cached_tail) < cap {
            return Ok(());
        }
        let tail = self
            .ring
            .mem
            .load(self.ring.idx(word::TAIL), Ordering::Acquire);
        // The tail may only move forward, and never past the head.
        if tail.wrapping_sub(self.cached_tail) > self.head.wrapping_sub(self.cached_tail) {
            return Err(self.refuse(SendError::CorruptTail));
        }
        self.cached_tail = tail;
        if self.head.wrapping_sub(tail) >= cap {
            return Err(self.refuse(SendError::Full));
        }
        Ok(())
    }

    /// Moves the producer to position `head` and publishes it, for a producer that disturbed
    /// its own ring (the `hostile` diagnostics) and must continue past everything it wrote.
    /// The consumer's tail is re-read on the next send.
    pub(crate) fn resync(&mut self, head: u64) {
        self.head = head;
        // Force a fresh read of the consumer's tail on the next send.
        self.cached_tail = head.wrapping_sub(self.ring.cap);
        self.ring
            .mem
            .store(self.ring.idx(word::HEAD), head, Ordering::Release);
    }

    pub(crate) fn view(&self) -> &RingView<M> {
        &self.ring
    }

    fn refuse(&mut self, e: SendError) -> SendError {
        let (c, w) = match e {
            SendError::Full => (&mut self.stats.full, word::FULL),
            SendError::TooLarge => (&mut self.stats.too_large, word::TOO_LARGE),
            SendError::CorruptTail => (&mut self.stats.corrupt_tail, word::CORRUPT_TAIL),
        };
        *c = c.wrapping_add(1);
        self.ring.mem.store(self.ring.idx(w), *c, Ordering::Relaxed);
        e
    }
}

/// The consumer's private read position.
#[derive(Clone, Copy, Debug)]
struct Cursor {
    tail: u64,
    cached_head: u64,
    /// One past the last slot accepted: positions up to a ring below it are refused, so a
    /// resync to an earlier head never replays a message.
    floor: u64,
    /// Last out-of-range head seen, so polling an idle ring with one counts it once.
    bad_head: Option<u64>,
}

impl Cursor {
    /// Takes the next slot into `out`: `Ok(None)` when empty, `Ok(Some((seq, len)))` for a slot
    /// that passed the index, sequence and length checks, `Err((pos, reason))` for a rejected
    /// one. Publishes the new tail whenever it moves.
    #[inline]
    fn take<M: Mem>(
        &mut self,
        ring: &RingView<M>,
        out: &mut FrameBuf,
    ) -> Result<Option<(u64, usize)>, (u64, RejectReason)> {
        let mem = &ring.mem;
        if self.tail == self.cached_head {
            let head = mem.load(ring.idx(word::HEAD), Ordering::Acquire);
            if head >= POS_LIMIT {
                // Not a position a producer can reach: ignore it (counted once per value) and
                // keep our place until a real head shows up.
                if self.bad_head == Some(head) {
                    return Ok(None);
                }
                self.bad_head = Some(head);
                return Err((head, RejectReason::BadIndex));
            }
            if self.tail >= POS_LIMIT || head.wrapping_sub(self.tail) > ring.cap {
                // Impossible head (or our tail, adopted at attach, was never a position): take
                // the head as the truth and start over from there. Afterwards the tail stays
                // below POS_LIMIT, so every position examined is one a producer could write.
                self.tail = head;
                self.cached_head = head;
                mem.store(ring.idx(word::TAIL), head, Ordering::Release);
                return Err((head, RejectReason::BadIndex));
            }
            self.cached_head = head;
            if head == self.tail {
                // Idle: repair our published tail if the peer scribbled on it, so the producer
                // is not left refusing sends with CorruptTail. Our own line: cheap to check.
                let t = ring.idx(word::TAIL);
                if mem.load(t, Ordering::Relaxed) != self.tail {
                    mem.store(t, self.tail, Ordering::Release);
                }
                return Ok(None);
            }
        }
        let pos = self.tail;
        let s = ring.slot(pos);
        let seq = mem.load(s, Ordering::Relaxed);
        let len = mem.load(s + 1, Ordering::Relaxed);
        // A slot can still hold a message already delivered only within one ring below the
        // floor; further below, its seq would have been overwritten. Bounding the check keeps a
        // garbage floor (from a scribbled tail at attach time) from blocking the ring for ever.
        let replay = pos < self.floor && self.floor - pos <= ring.cap;
        let verdict = if seq != pos || replay {
            Err((pos, RejectReason::BadSequence))
        } else if len > ring.payload_max() as u64 {
            Err((pos, RejectReason::BadLength))
        } else {
            let len = len as usize;
            mem.read_bytes(s + 2, &mut out[..len]);
            self.floor = pos.saturating_add(1);
            Ok(Some((pos, len)))
        };
        // The copy is done: release the slot to the producer.
        self.tail = pos.wrapping_add(1);
        mem.store(ring.idx(word::TAIL), self.tail, Ordering::Release);
        verdict
    }
}

/// The receiving end of a ring carrying messages of type `T`.
#[derive(Debug)]
pub struct Consumer<T, M> {
    ring: RingView<M>,
    cur: Cursor,
    stats: ConsumerStats,
    buf: FrameBuf,
    _msg: PhantomData<fn() -> T>,
}

impl<T, M: Mem> Consumer<T, M> {
    /// Builds the consumer side over a validated ring, resuming at the published tail.
    pub(crate) fn new(ring: RingView<M>) -> Self {
        let tail = ring.mem.load(ring.idx(word::TAIL), Ordering::Relaxed);
        Self {
            ring,
            cur: Cursor {
                tail,
                cached_head: tail,
                floor: tail,
                bad_head: None,
            },
            stats: ConsumerStats::default(),
            buf: [0; MAX_PAYLOAD],
            _msg: PhantomData,
        }
    }

    /// Counters of this side.
    pub fn stats(&self) -> ConsumerStats {
        self.stats
    }

    /// Number of slots.
    pub fn capacity(&self) -> u64 {
        self.ring.cap
    }

    /// Sequence number the next message is expected to carry.
    pub fn next_seq(&self) -> u64 {
        self.cur.tail
    }

    /// Takes the next slot's payload into `out`. Returns its sequence number and length, or
    /// `None` when the ring is empty.
    ///
    /// # Errors
    /// A [`Rejected`] slot (or head) was consumed, counted and skipped; call again for the next.
    pub fn try_recv_bytes(&mut self, out: &mut FrameBuf) -> Result<Option<(u64, usize)>, Rejected> {
        match self.cur.take(&self.ring, out) {
            Ok(Some(f)) => {
                self.count_received();
                Ok(Some(f))
            }
            Ok(None) => Ok(None),
            Err((pos, r)) => Err(self.reject(pos, r)),
        }
    }

    /// Takes and decodes the next message, or `None` when the ring is empty.
    ///
    /// # Errors
    /// A [`Rejected`] slot was consumed, counted and skipped; call again for the next.
    pub fn try_recv(&mut self) -> Result<Option<Received<T>>, Rejected>
    where
        T: DeserializeOwned,
    {
        let decoded = match self.cur.take(&self.ring, &mut self.buf) {
            Ok(None) => return Ok(None),
            Err((pos, r)) => return Err(self.reject(pos, r)),
            Ok(Some((seq, len))) => match postcard::take_from_bytes::<T>(&self.buf[..len]) {
                Ok((msg, [])) => Ok(Received { seq, msg }),
                Ok(_) => Err((seq, RejectReason::Trailing)),
                Err(_) => Err((seq, RejectReason::Decode)),
            },
        };
        match decoded {
            Ok(m) => {
                self.count_received();
                Ok(Some(m))
            }
            Err((pos, r)) => Err(self.reject(pos, r)),
        }
    }

    /// Takes the next valid message, skipping (and counting) rejected ones; `None` when empty.
    /// Looks at no more than one ring's worth of slots per call.
    pub fn recv(&mut self) -> Option<Received<T>>
    where
        T: DeserializeOwned,
    {
        for _ in 0..=self.ring.cap {
            match self.try_recv() {
                Ok(m) => return m,
                Err(_) => continue,
            }
        }
        None
    }

    /// The producer's counters as the producer published them in the ring's control block.
    /// Unvalidated (the peer writes them); use them only as hints, e.g. to notice that the
    /// producer found the ring full and wants a doorbell once slots are free.
    pub fn peer_stats(&self) -> ProducerStats {
        let l = |w| self.ring.mem.load(self.ring.idx(w), Ordering::Relaxed);
        ProducerStats {
            sent: l(word::SENT),
            full: l(word::FULL),
            too_large: l(word::TOO_LARGE),
            corrupt_tail: l(word::CORRUPT_TAIL),
        }
    }

    fn count_received(&mut self) {
        self.stats.received = self.stats.received.wrapping_add(1);
        self.ring.mem.store(
            self.ring.idx(word::RECEIVED),
            self.stats.received,
            Ordering::Relaxed,
        );
    }

    fn reject(&mut self, pos: u64, reason: RejectReason) -> Rejected {
        let n = self.stats.rejected.bump(reason);
        self.ring.mem.store(
            self.ring.idx(word::REJECTED + reason as usize),
            n,
            Ordering::Relaxed,
        );
        Rejected { pos, reason }
    }
}
