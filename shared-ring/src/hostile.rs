//! A deliberately hostile producer, for fault-injection diagnostics and tests.
//!
//! [`Hostile`] takes over a [`Producer`] and writes garbage into its ring and into the region
//! header the way a buggy or malicious peer could: random slot bytes, forged slots with the right
//! sequence number but random payloads, absurd lengths, impossible heads, a scribbled tail and a
//! corrupted header field. The consumer on the other side must reject all of it without
//! crashing and resume normal service once the garbage stops.
//!
//! [`Hostile::finish`] restores what the producer owns: the header words it saved, and its head,
//! which it moves *past* every position it wrote garbage to (forged slots the consumer accepted
//! raised its sequence floor, so positions before them would be refused as replays).

use crate::mem::{Mem, Ordering};
use crate::region::HEADER_SIZE;
use crate::ring::{word, Producer};

/// Header words saved and restored (magic, version, length, epoch, two ring geometries).
const HEADER_WORDS: usize = 10;
const _: () = assert!(HEADER_WORDS * 8 <= HEADER_SIZE);

/// Most slots one round writes.
pub const MAX_SLOTS_PER_ROUND: u64 = 8;

/// A small deterministic generator (xorshift64*) for the garbage.
#[derive(Clone, Copy, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced by a fixed odd constant).
    pub fn new(seed: u64) -> Self {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The kinds of garbage, one per round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JunkKind {
    /// Slots filled with random words (sequence and length words included), then published.
    RandomSlots,
    /// Slots with the right sequence number, a valid length and random payload bytes.
    ForgedSlots,
    /// Slots with the right sequence number and a length beyond the slot.
    BadLength,
    /// A head more than a ring ahead of the consumer.
    HeadFarAhead,
    /// A head behind the consumer's tail.
    HeadBehind,
    /// A random 64-bit head.
    RandomHead,
    /// A random value in the consumer's tail word.
    TailScribble,
    /// One header word overwritten with a random value.
    HeaderField,
}

impl JunkKind {
    /// Every kind, in the order [`Hostile::round`] cycles through them.
    pub const ALL: [JunkKind; 8] = [
        JunkKind::RandomSlots,
        JunkKind::ForgedSlots,
        JunkKind::BadLength,
        JunkKind::HeadFarAhead,
        JunkKind::HeadBehind,
        JunkKind::RandomHead,
        JunkKind::TailScribble,
        JunkKind::HeaderField,
    ];

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            JunkKind::RandomSlots => "random_slots",
            JunkKind::ForgedSlots => "forged_slots",
            JunkKind::BadLength => "bad_length",
            JunkKind::HeadFarAhead => "head_far_ahead",
            JunkKind::HeadBehind => "head_behind",
            JunkKind::RandomHead => "random_head",
            JunkKind::TailScribble => "tail_scribble",
            JunkKind::HeaderField => "header_field",
        }
    }
}

/// What one round wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JunkRound {
    /// The kind of garbage.
    pub kind: JunkKind,
    /// Slots written.
    pub slots: u64,
    /// Head value published by the round (unchanged for tail and header rounds).
    pub head: u64,
}

/// A producer turned hostile. Create with [`Hostile::begin`], write garbage with
/// [`Hostile::round`], give the ring back with [`Hostile::finish`].
#[derive(Debug)]
pub struct Hostile<'p, T, M: Mem> {
    producer: &'p mut Producer<T, M>,
    header: [u64; HEADER_WORDS],
    /// One past the furthest position garbage slots were written to.
    high: u64,
    rounds: u64,
}

impl<'p, T, M: Mem> Hostile<'p, T, M> {
    /// Takes over `producer`, saving the header and its head.
    pub fn begin(producer: &'p mut Producer<T, M>) -> Self {
        let mem = &producer.view().mem;
        let header = core::array::from_fn(|i| mem.load(i, Ordering::Acquire));
        let high = producer.next_seq();
        Hostile {
            producer,
            header,
            high,
            rounds: 0,
        }
    }

    /// Writes one round of garbage; round `i` uses `JunkKind::ALL[i % 8]`.
    pub fn round(&mut self, rng: &mut Rng) -> JunkRound {
        let kind = JunkKind::ALL[(self.rounds % JunkKind::ALL.len() as u64) as usize];
        self.rounds += 1;
        self.write(kind, rng)
    }

    /// Writes one round of garbage of `kind`.
    pub fn write(&mut self, kind: JunkKind, rng: &mut Rng) -> JunkRound {
        let ring = self.producer.view();
        let mem = &ring.mem;
        let cap = ring.cap;
        let head_w = ring.word_index(word::HEAD);
        let mut slots = 0;
        let mut head = mem.load(head_w, Ordering::Relaxed);
        match kind {
            JunkKind::RandomSlots | JunkKind::ForgedSlots | JunkKind::BadLength => {
                let k = 1 + rng.below(MAX_SLOTS_PER_ROUND.min(cap));
                for pos in self.high..self.high.wrapping_add(k) {
                    let s = ring.slot_index(pos);
                    for w in 0..ring.slot_words {
                        mem.store(s + w, rng.next_u64(), Ordering::Relaxed);
                    }
                    let max = ring.payload_max() as u64;
                    match kind {
                        JunkKind::ForgedSlots => {
                            mem.store(s, pos, Ordering::Relaxed);
                            mem.store(s + 1, rng.below(max + 1), Ordering::Relaxed);
                        }
                        JunkKind::BadLength => {
                            mem.store(s, pos, Ordering::Relaxed);
                            let len = max + 1 + rng.below(u64::MAX - max - 1);
                            mem.store(s + 1, len, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
                slots = k;
                self.high = self.high.wrapping_add(k);
                head = self.high;
                mem.store(head_w, head, Ordering::Release);
            }
            JunkKind::HeadFarAhead => {
                head = self.high.wrapping_add(cap + 1 + rng.below(1 << 20));
                mem.store(head_w, head, Ordering::Release);
            }
            JunkKind::HeadBehind => {
                head = self.high.wrapping_sub(1 + rng.below(2 * cap));
                mem.store(head_w, head, Ordering::Release);
            }
            JunkKind::RandomHead => {
                head = rng.next_u64();
                mem.store(head_w, head, Ordering::Release);
            }
            JunkKind::TailScribble => {
                mem.store(
                    ring.word_index(word::TAIL),
                    rng.next_u64(),
                    Ordering::Release,
                );
            }
            JunkKind::HeaderField => {
                let w = rng.below(HEADER_WORDS as u64) as usize;
                mem.store(w, rng.next_u64() | 1, Ordering::Release);
            }
        }
        JunkRound { kind, slots, head }
    }

    /// The head and tail words as published right now (the tail is the consumer's).
    pub fn published(&self) -> (u64, u64) {
        let ring = self.producer.view();
        (
            ring.mem
                .load(ring.word_index(word::HEAD), Ordering::Acquire),
            ring.mem
                .load(ring.word_index(word::TAIL), Ordering::Acquire),
        )
    }

    /// Restores the saved header words and moves the producer past all garbage: its head
    /// becomes one past the furthest garbage slot and is published. Returns that head; the
    /// consumer is back in step once its published tail equals it.
    pub fn finish(self) -> u64 {
        let mem = self.producer.view().mem.clone();
        // Header words first, magic last, as `init` writes them.
        for (i, v) in self.header.iter().enumerate().skip(1) {
            mem.store(i, *v, Ordering::Relaxed);
        }
        mem.store(0, self.header[0], Ordering::Release);
        self.producer.resync(self.high);
        self.high
    }
}
