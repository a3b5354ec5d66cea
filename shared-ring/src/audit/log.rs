//! Audit log region (format version 2): per-writer segments, single writer, lock-free readers.
//!
//! Layout (64-bit words, 64-byte blocks): a header block — magic, version, record size, segment
//! count, total record capacity, reserved — then one descriptor block per segment — writer |
//! subject << 16, first record slot, capacity, write sequence, overwritten, refused, invalid,
//! reserved — then the record slots. Segment `k`'s record `seq` (1-based, per segment) lives in
//! slot `first + (seq - 1) % capacity`.
//!
//! A segment belongs to one (writer, subject) pair: a guest writes only its own segment (subject
//! = itself), the hypervisor writes one segment per VM its events are about, plus one for events
//! about itself. So a writer that floods the log wraps only its own segment: it cannot evict the
//! records of another writer, nor the hypervisor's records about another VM. Within a segment the
//! log wraps: the oldest record is overwritten and `overwritten` counts it; a reader sees it as a
//! gap in that segment's sequence numbers. Each slot's first word is a seqlock stamp: 0 while
//! the writer is filling it, the record's sequence number once complete; a reader copies a
//! record only if the stamp holds the expected number both before and after the copy.
//!
//! Time stamps are strictly increasing over the whole log (the writer bumps a stamp that does
//! not exceed the previous one), so merging the segments by time gives the append order.

use super::{AuditEntry, AuditError, AuditRecord, VM_HYPERVISOR};
use crate::mem::{Mem, Ordering};

/// `"SISAUDT1"` little-endian (the region family; the layout is told by [`VERSION`]).
pub const MAGIC: u64 = u64::from_le_bytes(*b"SISAUDT1");
/// Layout version: 2 = per-writer segments, writer and subject in every record.
pub const VERSION: u64 = 2;
/// Bytes per record (and per header or descriptor block).
pub const RECORD_SIZE: usize = 64;
/// Bytes of the header block.
pub const HEADER_SIZE: usize = 64;
/// Most segments a log may have.
pub const MAX_SEGMENTS: usize = 16;

const W_MAGIC: usize = 0;
const W_VERSION: usize = 1;
const W_RECORD_SIZE: usize = 2;
const W_SEGMENTS: usize = 3;
const W_CAPACITY: usize = 4;
const BLOCK_WORDS: usize = RECORD_SIZE / 8;
/// Sequence numbers a reader believes (larger ones come from a corrupted descriptor).
const SEQ_LIMIT: u64 = 1 << 62;

// Descriptor words (from the segment's descriptor block).
const D_OWNER: usize = 0;
const D_FIRST: usize = 1;
const D_CAPACITY: usize = 2;
const D_WRITE_SEQ: usize = 3;
const D_OVERWRITTEN: usize = 4;
const D_REFUSED: usize = 5;
const D_INVALID: usize = 6;

fn desc(k: usize) -> usize {
    (HEADER_SIZE / 8) + k * BLOCK_WORDS
}

/// Word index of the first record slot for a log of `segments` segments.
fn records_base(segments: usize) -> usize {
    desc(segments)
}

/// What a segment is for, and its share of the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentSpec {
    /// Who appends to it (a VM id, or [`VM_HYPERVISOR`]).
    pub writer: u16,
    /// The VM its records are about (for a guest writer: itself).
    pub subject: u16,
    /// Its share of the record slots, relative to the other segments' weights.
    pub weight: u32,
}

/// Weight of a guest's own segment in [`standard_segments`].
pub const GUEST_WEIGHT: u32 = 7;
/// Weight of a hypervisor segment in [`standard_segments`].
pub const HV_WEIGHT: u32 = 1;

/// The segments SIS uses for `vms` VMs: each VM's own (weight [`GUEST_WEIGHT`]), the
/// hypervisor's records about each VM (weight [`HV_WEIGHT`]) and about itself (same weight).
pub fn standard_segments(vms: usize) -> heapless::Vec<SegmentSpec, MAX_SEGMENTS> {
    let mut v = heapless::Vec::new();
    let vms = vms.min((MAX_SEGMENTS - 1) / 2) as u16;
    for vm in 0..vms {
        let _ = v.push(SegmentSpec {
            writer: vm,
            subject: vm,
            weight: GUEST_WEIGHT,
        });
    }
    for vm in 0..vms {
        let _ = v.push(SegmentSpec {
            writer: VM_HYPERVISOR,
            subject: vm,
            weight: HV_WEIGHT,
        });
    }
    let _ = v.push(SegmentSpec {
        writer: VM_HYPERVISOR,
        subject: VM_HYPERVISOR,
        weight: HV_WEIGHT,
    });
    v
}

/// Where a segment's records are (validated geometry, kept in private memory).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Who appends to it.
    pub writer: u16,
    /// The VM its records are about.
    pub subject: u16,
    /// First record slot (index among the record slots).
    pub first: u64,
    /// Records it holds.
    pub capacity: u64,
}

/// One segment's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentStats {
    /// Who appends to it.
    pub writer: u16,
    /// The VM its records are about.
    pub subject: u16,
    /// Records it holds.
    pub capacity: u64,
    /// Sequence number of its last committed record (= records ever appended to it).
    pub write_seq: u64,
    /// Its records lost to wrap-around.
    pub overwritten: u64,
    /// Appends by its writer refused because the op is reserved to the hypervisor.
    pub refused: u64,
    /// Appends by its writer refused as invalid (unknown op, undefined status bits).
    pub invalid: u64,
}

/// Counters of the whole log (sums over the segments).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Records the region holds.
    pub capacity: u64,
    /// Records ever appended.
    pub write_seq: u64,
    /// Records lost to wrap-around.
    pub overwritten: u64,
    /// Appends refused as invalid.
    pub invalid: u64,
    /// Appends refused because a guest used an op reserved to the hypervisor.
    pub refused: u64,
}

impl AuditStats {
    fn add(&mut self, s: &SegmentStats) {
        self.capacity += s.capacity;
        self.write_seq = self.write_seq.wrapping_add(s.write_seq);
        self.overwritten = self.overwritten.wrapping_add(s.overwritten);
        self.invalid = self.invalid.wrapping_add(s.invalid);
        self.refused = self.refused.wrapping_add(s.refused);
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct WSeg {
    info: SegmentInfo,
    stats: SegmentStats,
}

/// The log's single writer (the hypervisor; serialise appends from several cores with a lock).
#[derive(Debug)]
pub struct AuditWriter<M> {
    mem: M,
    base: usize,
    segs: heapless::Vec<WSeg, MAX_SEGMENTS>,
    last_ts: u64,
}

impl<M: Mem> AuditWriter<M> {
    /// Formats the region as an empty log with `specs` segments: every record slot is split
    /// between them (one each, the rest by weight), stamps are cleared, the header and
    /// descriptors written, the magic last.
    ///
    /// # Errors
    /// [`AuditError::BadRegion`] if there are no segments or too many, a (writer, subject) pair
    /// twice, a zero weight, or too few slots for one record per segment.
    pub fn init(mem: M, specs: &[SegmentSpec]) -> Result<Self, AuditError> {
        let n = specs.len();
        if n == 0 || n > MAX_SEGMENTS {
            return Err(AuditError::BadRegion("segment count out of range"));
        }
        for (i, a) in specs.iter().enumerate() {
            if a.weight == 0 {
                return Err(AuditError::BadRegion("segment weight 0"));
            }
            if specs[..i]
                .iter()
                .any(|b| (b.writer, b.subject) == (a.writer, a.subject))
            {
                return Err(AuditError::BadRegion("segment listed twice"));
            }
        }
        let base = records_base(n);
        let words = mem.words();
        if words < base + n * BLOCK_WORDS {
            return Err(AuditError::BadRegion(
                "too small for one record per segment",
            ));
        }
        let slots = ((words - base) / BLOCK_WORDS) as u64;
        let total: u64 = specs.iter().map(|s| u64::from(s.weight)).sum();
        let mut segs = heapless::Vec::<WSeg, MAX_SEGMENTS>::new();
        let mut first = 0;
        for (i, s) in specs.iter().enumerate() {
            // One slot each, the rest by weight; the last takes what rounding left.
            let cap = if i + 1 == n {
                slots - first
            } else {
                1 + (slots - n as u64) * u64::from(s.weight) / total
            };
            let info = SegmentInfo {
                writer: s.writer,
                subject: s.subject,
                first,
                capacity: cap,
            };
            let _ = segs.push(WSeg {
                info,
                stats: SegmentStats {
                    writer: s.writer,
                    subject: s.subject,
                    capacity: cap,
                    ..SegmentStats::default()
                },
            });
            first += cap;
        }
        mem.store(W_MAGIC, 0, Ordering::Relaxed);
        mem.fence(Ordering::Release);
        for slot in 0..slots as usize {
            mem.store(base + slot * BLOCK_WORDS, 0, Ordering::Relaxed);
        }
        for (k, s) in segs.iter().enumerate() {
            let d = desc(k);
            let owner = u64::from(s.info.writer) | u64::from(s.info.subject) << 16;
            for (w, v) in [
                (D_OWNER, owner),
                (D_FIRST, s.info.first),
                (D_CAPACITY, s.info.capacity),
                (D_WRITE_SEQ, 0),
                (D_OVERWRITTEN, 0),
                (D_REFUSED, 0),
                (D_INVALID, 0),
                (D_INVALID + 1, 0),
            ] {
                mem.store(d + w, v, Ordering::Relaxed);
            }
        }
        for (w, v) in [
            (W_VERSION, VERSION),
            (W_RECORD_SIZE, RECORD_SIZE as u64),
            (W_SEGMENTS, n as u64),
            (W_CAPACITY, slots),
            (W_CAPACITY + 1, 0),
            (W_CAPACITY + 2, 0),
            (W_CAPACITY + 3, 0),
        ] {
            mem.store(w, v, Ordering::Relaxed);
        }
        mem.store(W_MAGIC, MAGIC, Ordering::Release);
        Ok(Self {
            mem,
            base,
            segs,
            last_ts: 0,
        })
    }

    /// Counters of the whole log.
    pub fn stats(&self) -> AuditStats {
        let mut t = AuditStats::default();
        for s in &self.segs {
            t.add(&s.stats);
        }
        t
    }

    /// Counters of every segment, in layout order.
    pub fn segment_stats(&self) -> impl Iterator<Item = SegmentStats> + '_ {
        self.segs.iter().map(|s| s.stats)
    }

    fn find(&self, writer: u16, subject: u16) -> Option<usize> {
        self.segs
            .iter()
            .position(|s| (s.info.writer, s.info.subject) == (writer, subject))
    }

    fn bump(&mut self, k: usize, word: usize) {
        let st = &mut self.segs[k].stats;
        let v = match word {
            D_REFUSED => &mut st.refused,
            D_INVALID => &mut st.invalid,
            _ => &mut st.overwritten,
        };
        *v = v.wrapping_add(1);
        let v = *v;
        self.mem.store(desc(k) + word, v, Ordering::Relaxed);
    }

    /// Counts an append by `writer` about `subject` that was refused as invalid before it got
    /// here (for example reserved hypercall bits), in that segment's `invalid`.
    pub fn count_invalid(&mut self, writer: u16, subject: u16) {
        if let Some(k) = self.find(writer, subject) {
            self.bump(k, D_INVALID);
        }
    }

    /// Appends a record by `writer` about `subject`, time-stamped `ts_ns` (raised to one past
    /// the previous record's stamp if needed); returns its sequence number in its segment.
    ///
    /// # Errors
    /// [`AuditError::NoSegment`] if the log has no segment for (writer, subject) (a guest may
    /// only write about itself); [`AuditError::Forbidden`] if a guest uses an op reserved to
    /// the hypervisor (counted in the segment's `refused`); [`AuditError::BadOp`] /
    /// [`AuditError::BadStatus`] for an invalid entry (counted in `invalid`). Nothing is written
    /// in any of these cases.
    pub fn append(
        &mut self,
        writer: u16,
        subject: u16,
        ts_ns: u64,
        entry: &AuditEntry,
    ) -> Result<u64, AuditError> {
        let k = self.find(writer, subject).ok_or(AuditError::NoSegment)?;
        if let Err(e) = entry.validate() {
            self.bump(k, D_INVALID);
            return Err(e);
        }
        if writer != VM_HYPERVISOR && entry.is_hypervisor_only() {
            self.bump(k, D_REFUSED);
            return Err(AuditError::Forbidden(entry.op));
        }
        let info = self.segs[k].info;
        let seq = self.segs[k].stats.write_seq + 1;
        if seq > info.capacity {
            self.bump(k, D_OVERWRITTEN);
        }
        let ts = ts_ns.max(self.last_ts.wrapping_add(1));
        self.last_ts = ts;
        let s = self.base + (info.first + (seq - 1) % info.capacity) as usize * BLOCK_WORDS;
        let m = &self.mem;
        m.store(s, 0, Ordering::Relaxed);
        m.fence(Ordering::Release);
        let words = [
            ts,
            u64::from(subject)
                | u64::from(entry.op) << 16
                | u64::from(entry.status) << 32
                | u64::from(writer) << 48,
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
        m.store(desc(k) + D_WRITE_SEQ, seq, Ordering::Release);
        self.segs[k].stats.write_seq = seq;
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

/// Result of the merged listings ([`AuditReader::newest`], [`AuditReader::for_each`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// Records delivered.
    pub count: usize,
    /// Records of the selected segments that are missing from the span the listing covers:
    /// overwritten (or being rewritten) before they could be read. For `for_each` the span
    /// starts at each segment's first record ever, so this counts every record lost so far.
    pub lost: u64,
}

/// A reader of the log (guests through their read-only mapping, or the hypervisor's monitor).
#[derive(Clone, Debug)]
pub struct AuditReader<M> {
    mem: M,
    base: usize,
    segs: heapless::Vec<SegmentInfo, MAX_SEGMENTS>,
}

impl<M: Mem> AuditReader<M> {
    /// Validates the header and the segment descriptors and keeps the geometry privately.
    ///
    /// # Errors
    /// [`AuditError::BadRegion`] if the magic, version, record size, segment count or a
    /// segment's place do not fit the mapping.
    pub fn attach(mem: M) -> Result<Self, AuditError> {
        let words = mem.words();
        if words < (HEADER_SIZE + RECORD_SIZE) / 8 {
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
        let n = mem.load(W_SEGMENTS, Ordering::Relaxed);
        if n == 0 || n > MAX_SEGMENTS as u64 {
            return Err(AuditError::BadRegion("segment count out of range"));
        }
        let n = n as usize;
        let base = records_base(n);
        if words < base {
            return Err(AuditError::BadRegion("descriptors do not fit the mapping"));
        }
        let slots = ((words - base) / BLOCK_WORDS) as u64;
        let mut segs = heapless::Vec::new();
        let mut next = 0u64;
        for k in 0..n {
            let d = desc(k);
            let owner = mem.load(d + D_OWNER, Ordering::Relaxed);
            let first = mem.load(d + D_FIRST, Ordering::Relaxed);
            let cap = mem.load(d + D_CAPACITY, Ordering::Relaxed);
            // Segments are laid out in order, back to back, inside the mapping.
            if first != next || cap == 0 || cap > slots - first {
                return Err(AuditError::BadRegion("segment does not fit the mapping"));
            }
            next = first + cap;
            let _ = segs.push(SegmentInfo {
                writer: owner as u16,
                subject: (owner >> 16) as u16,
                first,
                capacity: cap,
            });
        }
        Ok(Self { mem, base, segs })
    }

    /// The segments, in layout order.
    pub fn segments(&self) -> &[SegmentInfo] {
        &self.segs
    }

    /// The segment of (writer, subject), if the log has one.
    pub fn segment(&self, writer: u16, subject: u16) -> Option<usize> {
        self.segs
            .iter()
            .position(|s| (s.writer, s.subject) == (writer, subject))
    }

    /// Counters of segment `k` (zeroes for a segment the log does not have).
    pub fn segment_stats(&self, k: usize) -> SegmentStats {
        let Some(info) = self.segs.get(k) else {
            return SegmentStats::default();
        };
        let d = desc(k);
        let m = &self.mem;
        SegmentStats {
            writer: info.writer,
            subject: info.subject,
            capacity: info.capacity,
            write_seq: m.load(d + D_WRITE_SEQ, Ordering::Acquire),
            overwritten: m.load(d + D_OVERWRITTEN, Ordering::Relaxed),
            refused: m.load(d + D_REFUSED, Ordering::Relaxed),
            invalid: m.load(d + D_INVALID, Ordering::Relaxed),
        }
    }

    /// Counters of the whole log.
    pub fn stats(&self) -> AuditStats {
        let mut t = AuditStats::default();
        for k in 0..self.segs.len() {
            t.add(&self.segment_stats(k));
        }
        t
    }

    /// Segment `k`'s last committed sequence number. Clamped below 2^62 (no writer gets
    /// there), so a scribbled descriptor cannot make the cursors' arithmetic overflow.
    fn head(&self, k: usize) -> u64 {
        self.mem
            .load(desc(k) + D_WRITE_SEQ, Ordering::Acquire)
            .min(SEQ_LIMIT)
    }

    fn oldest(&self, k: usize, head: u64) -> u64 {
        let cap = self.segs[k].capacity;
        if head > cap {
            head - cap + 1
        } else {
            1
        }
    }

    /// Copies segment `k`'s committed records with sequence numbers from `from_seq` on
    /// (1-based; 0 reads from the oldest kept) into `out`, oldest first.
    pub fn read(&self, k: usize, from_seq: u64, out: &mut [AuditRecord]) -> ReadBatch {
        if k >= self.segs.len() {
            return ReadBatch {
                next_seq: from_seq,
                ..ReadBatch::default()
            };
        }
        let head = self.head(k);
        let oldest = self.oldest(k, head);
        let mut s = from_seq.clamp(1, SEQ_LIMIT + 1);
        let mut lost = 0;
        if s < oldest {
            lost = oldest - s;
            s = oldest;
        }
        let mut count = 0;
        while s <= head && count < out.len() {
            match self.read_one(k, s) {
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

    /// Copies record `seq` of segment `k` if it is still in the log and was not being rewritten
    /// meanwhile.
    pub fn read_one(&self, k: usize, seq: u64) -> Option<AuditRecord> {
        let info = *self.segs.get(k)?;
        if seq == 0 {
            return None;
        }
        let m = &self.mem;
        let s = self.base + (info.first + (seq - 1) % info.capacity) as usize * BLOCK_WORDS;
        if m.load(s, Ordering::Acquire) != seq {
            return None;
        }
        let mut w = [0u64; BLOCK_WORDS - 1];
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
            writer: (w[1] >> 48) as u16,
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

    /// Copies the newest records of the segments `select` accepts (up to `out.len()`, oldest of
    /// them first, merged by time) into `out`.
    pub fn newest(
        &self,
        select: impl Fn(&SegmentInfo) -> bool,
        out: &mut [AuditRecord],
    ) -> Listing {
        // Per segment: the next sequence number to look at going backwards, its floor, and the
        // record there (read once).
        let mut cur = [(0u64, 0u64, None::<AuditRecord>); MAX_SEGMENTS];
        for (k, info) in self.segs.iter().enumerate() {
            if select(info) {
                let head = self.head(k);
                cur[k] = (head, self.oldest(k, head), None);
            }
        }
        let mut lost = 0;
        let mut filled = 0;
        while filled < out.len() {
            for (k, (seq, floor, rec)) in cur.iter_mut().enumerate().take(self.segs.len()) {
                while rec.is_none() && *seq >= *floor && *seq > 0 {
                    *rec = self.read_one(k, *seq);
                    if rec.is_none() {
                        lost += 1;
                    }
                    *seq -= 1;
                }
            }
            let best = pick(&cur[..self.segs.len()], |a, b| a > b);
            let Some(b) = best else { break };
            filled += 1;
            out[out.len() - filled] = cur[b].2.take().unwrap_or_default();
        }
        let len = out.len();
        out.copy_within(len - filled.., 0);
        Listing {
            count: filled,
            lost,
        }
    }

    /// Calls `f` with every record of the segments `select` accepts, merged by time, oldest
    /// first, up to the records committed when the call started.
    pub fn for_each(
        &self,
        select: impl Fn(&SegmentInfo) -> bool,
        mut f: impl FnMut(&AuditRecord),
    ) -> Listing {
        // Per segment: next sequence number to read, the last one to read, the record read.
        let mut cur = [(1u64, 0u64, None::<AuditRecord>); MAX_SEGMENTS];
        let mut lost = 0;
        for (k, info) in self.segs.iter().enumerate() {
            if select(info) {
                let head = self.head(k);
                let oldest = self.oldest(k, head);
                lost = u64::saturating_add(lost, oldest - 1);
                cur[k] = (oldest, head, None);
            }
        }
        let mut count = 0;
        loop {
            for (k, (seq, head, rec)) in cur.iter_mut().enumerate().take(self.segs.len()) {
                while rec.is_none() && *seq <= *head {
                    *rec = self.read_one(k, *seq);
                    if rec.is_none() {
                        lost += 1;
                    }
                    *seq += 1;
                }
            }
            let Some(b) = pick(&cur[..self.segs.len()], |a, b| a < b) else {
                break;
            };
            if let Some(r) = cur[b].2.take() {
                f(&r);
                count += 1;
            }
        }
        Listing { count, lost }
    }
}

/// The cursor whose record's time stamp wins `better` against all others (the first on a tie).
fn pick(
    cur: &[(u64, u64, Option<AuditRecord>)],
    better: impl Fn(u64, u64) -> bool,
) -> Option<usize> {
    let mut best: Option<(usize, u64)> = None;
    for (k, c) in cur.iter().enumerate() {
        if let Some(r) = &c.2 {
            if best.is_none_or(|(_, ts)| better(r.ts_ns, ts)) {
                best = Some((k, r.ts_ns));
            }
        }
    }
    best.map(|(k, _)| k)
}
