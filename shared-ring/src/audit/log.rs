//! Audit log region: layout, single writer, lock-free readers.
//!
//! Layout (64-bit words): a 64-byte header — magic, version, record size, capacity, write
//! sequence (last committed record), overwritten count, invalid count, reserved — then
//! `capacity` records of 64 bytes. Record `seq` (1-based) lives in slot `(seq - 1) % capacity`.
//!
//! When full, the log wraps: the oldest record is overwritten and `overwritten` counts it, so
//! the newest `capacity` records are always readable and every loss is counted (a reader also
//! sees it as a gap in sequence numbers). Each slot's first word is a seqlock stamp: 0 while the
//! writer is filling it, the record's sequence number once complete; a reader copies a record
//! only if the stamp holds the expected number both before and after the copy, so it never
//! returns a torn record.

use super::{AuditEntry, AuditError, AuditRecord};
use crate::mem::{Mem, Ordering};

/// `"SISAUDT1"` little-endian.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SISAUDT1");
/// Layout version.
pub const VERSION: u64 = 1;
/// Bytes per record.
pub const RECORD_SIZE: usize = 64;
/// Bytes of the header.
pub const HEADER_SIZE: usize = 64;

const W_MAGIC: usize = 0;
const W_VERSION: usize = 1;
const W_RECORD_SIZE: usize = 2;
const W_CAPACITY: usize = 3;
const W_WRITE_SEQ: usize = 4;
const W_OVERWRITTEN: usize = 5;
const W_INVALID: usize = 6;
const RECORD_WORDS: usize = RECORD_SIZE / 8;

fn slot(cap: u64, seq: u64) -> usize {
    HEADER_SIZE / 8 + ((seq - 1) % cap) as usize * RECORD_WORDS
}

/// Counters from the log header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Records the region holds.
    pub capacity: u64,
    /// Sequence number of the last committed record (= records ever appended).
    pub write_seq: u64,
    /// Records lost to wrap-around.
    pub overwritten: u64,
    /// Appends refused as invalid.
    pub invalid: u64,
}

/// The log's single writer (the hypervisor; serialise appends from several cores with a lock).
#[derive(Debug)]
pub struct AuditWriter<M> {
    mem: M,
    cap: u64,
    seq: u64,
    stats: AuditStats,
}

impl<M: Mem> AuditWriter<M> {
    /// Formats the region as an empty log: clears every record stamp and writes the header, the
    /// magic last.
    ///
    /// # Errors
    /// [`AuditError::BadRegion`] if the region cannot hold a header and one record.
    pub fn init(mem: M) -> Result<Self, AuditError> {
        let words = mem.words();
        if words < (HEADER_SIZE + RECORD_SIZE) / 8 {
            return Err(AuditError::BadRegion("smaller than header plus one record"));
        }
        let cap = ((words * 8 - HEADER_SIZE) / RECORD_SIZE) as u64;
        mem.store(W_MAGIC, 0, Ordering::Relaxed);
        mem.fence(Ordering::Release);
        for i in 0..cap {
            mem.store(slot(cap, i + 1), 0, Ordering::Relaxed);
        }
        for (w, v) in [
            (W_VERSION, VERSION),
            (W_RECORD_SIZE, RECORD_SIZE as u64),
            (W_CAPACITY, cap),
            (W_WRITE_SEQ, 0),
            (W_OVERWRITTEN, 0),
            (W_INVALID, 0),
        ] {
            mem.store(w, v, Ordering::Relaxed);
        }
        mem.store(W_MAGIC, MAGIC, Ordering::Release);
        Ok(Self {
            mem,
            cap,
            seq: 0,
            stats: AuditStats {
                capacity: cap,
                ..AuditStats::default()
            },
        })
    }

    /// Counters.
    pub fn stats(&self) -> AuditStats {
        self.stats
    }

    /// Appends a record stamped with `vm_id` and `ts_ns`; returns its sequence number.
    ///
    /// # Errors
    /// An invalid entry is refused (nothing written) and counted in `invalid`.
    pub fn append(
        &mut self,
        vm_id: u16,
        ts_ns: u64,
        entry: &AuditEntry,
    ) -> Result<u64, AuditError> {
        if let Err(e) = entry.validate() {
            self.stats.invalid = self.stats.invalid.wrapping_add(1);
            self.mem
                .store(W_INVALID, self.stats.invalid, Ordering::Relaxed);
            return Err(e);
        }
        let seq = self.seq + 1;
        if seq > self.cap {
            self.stats.overwritten = self.stats.overwritten.wrapping_add(1);
            self.mem
                .store(W_OVERWRITTEN, self.stats.overwritten, Ordering::Relaxed);
        }
        let s = slot(self.cap, seq);
        let m = &self.mem;
        m.store(s, 0, Ordering::Relaxed);
        m.fence(Ordering::Release);
        let words = [
            ts_ns,
            u64::from(vm_id) | u64::from(entry.op) << 16 | u64::from(entry.status) << 32,
            u64::from(entry.prompt_len) | u64::from(entry.tokens) << 32,
            entry.wcet_cycles,
            entry.period_ns,
            entry.extra,
            0,
        ];
        for (i, w) in words.into_iter().enumerate() {
            m.store(s + 1 + i, w, Ordering::Relaxed);
        }
        m.store(s, seq, Ordering::Release);
        m.store(W_WRITE_SEQ, seq, Ordering::Release);
        self.seq = seq;
        self.stats.write_seq = seq;
        Ok(seq)
    }
}

/// Result of [`AuditReader::read`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadBatch {
    /// Records copied into the output.
    pub count: usize,
    /// Sequence number to pass to the next `read`.
    pub next_seq: u64,
    /// Records between the requested start and `next_seq` that were overwritten before they
    /// could be read.
    pub lost: u64,
}

/// A reader of the log (guests through their read-only mapping, or the hypervisor's monitor).
#[derive(Clone, Debug)]
pub struct AuditReader<M> {
    mem: M,
    cap: u64,
}

impl<M: Mem> AuditReader<M> {
    /// Validates the header.
    ///
    /// # Errors
    /// [`AuditError::BadRegion`] if the magic, version, record size or capacity do not match
    /// the mapping.
    pub fn attach(mem: M) -> Result<Self, AuditError> {
        if mem.words() < (HEADER_SIZE + RECORD_SIZE) / 8 {
            return Err(AuditError::BadRegion("smaller than header plus one record"));
        }
        if mem.load(W_MAGIC, Ordering::Acquire) != MAGIC {
            return Err(AuditError::BadRegion("bad magic (not initialised)"));
        }
        if mem.load(W_VERSION, Ordering::Relaxed) != VERSION {
            return Err(AuditError::BadRegion("unknown version"));
        }
        if mem.load(W_RECORD_SIZE, Ordering::Relaxed) != RECORD_SIZE as u64 {
            return Err(AuditError::BadRegion("unexpected record size"));
        }
        let cap = mem.load(W_CAPACITY, Ordering::Relaxed);
        let fits = ((mem.words() * 8 - HEADER_SIZE) / RECORD_SIZE) as u64;
        if cap == 0 || cap > fits {
            return Err(AuditError::BadRegion("capacity does not fit the mapping"));
        }
        Ok(Self { mem, cap })
    }

    /// Counters from the header.
    pub fn stats(&self) -> AuditStats {
        AuditStats {
            capacity: self.cap,
            write_seq: self.mem.load(W_WRITE_SEQ, Ordering::Acquire),
            overwritten: self.mem.load(W_OVERWRITTEN, Ordering::Relaxed),
            invalid: self.mem.load(W_INVALID, Ordering::Relaxed),
        }
    }

    /// Copies the newest records (up to `out.len()`, oldest of them first) into `out`.
    pub fn newest(&self, out: &mut [AuditRecord]) -> ReadBatch {
        let head = self.mem.load(W_WRITE_SEQ, Ordering::Acquire);
        let n = (out.len() as u64).min(self.cap);
        self.read(head.saturating_sub(n) + 1, out)
    }

    /// Copies committed records with sequence numbers from `from_seq` on (1-based; 0 reads from
    /// the oldest kept) into `out`, oldest first.
    pub fn read(&self, from_seq: u64, out: &mut [AuditRecord]) -> ReadBatch {
        let head = self.mem.load(W_WRITE_SEQ, Ordering::Acquire);
        let oldest = if head > self.cap {
            head - self.cap + 1
        } else {
            1
        };
        let mut s = from_seq.max(1);
        let mut lost = 0;
        if s < oldest {
            lost = oldest - s;
            s = oldest;
        }
        let mut count = 0;
        while s <= head && count < out.len() {
            match self.read_one(s) {
                Some(r) => {
                    out[count] = r;
                    count += 1;
                }
                None => lost += 1,
            }
            s += 1;
        }
        ReadBatch {
            count,
            next_seq: s,
            lost,
        }
    }

    /// Copies record `seq` if it is still in the log and was not being rewritten meanwhile.
    pub fn read_one(&self, seq: u64) -> Option<AuditRecord> {
        if seq == 0 {
            return None;
        }
        let m = &self.mem;
        let s = slot(self.cap, seq);
        if m.load(s, Ordering::Acquire) != seq {
            return None;
        }
        let mut w = [0u64; RECORD_WORDS - 1];
        for (i, v) in w.iter_mut().enumerate() {
            *v = m.load(s + 1 + i, Ordering::Relaxed);
        }
        m.fence(Ordering::Acquire);
        if m.load(s, Ordering::Relaxed) != seq {
            return None;
        }
        Some(AuditRecord {
            seq,
            ts_ns: w[0],
            vm_id: w[1] as u16,
            entry: AuditEntry {
                op: (w[1] >> 16) as u16,
                status: (w[1] >> 32) as u16,
                prompt_len: w[2] as u32,
                tokens: (w[2] >> 32) as u32,
                wcet_cycles: w[3],
                period_ns: w[4],
                extra: w[5],
            },
        })
    }
}
