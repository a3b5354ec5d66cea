//! Inferences the control guest has started on the LLM partition, and the tokens they produced.
//!
//! The control guest asks the LLM partition to stream every job's tokens back (ring flag
//! `STREAM`) and keeps them here, so `0x12` poll is answered locally from what has arrived:
//! each poll returns the next unread chunks ("items") and `done=1` with the last of them. For a
//! host-streamed job (frame flag `FLAG_STREAM`) chunks are not kept: the caller turns them into
//! `STREAM` lines at once, and poll returns no items.
//!
//! Pure logic, host tested.

use sis_frame::reply::{write_poll, EndReason, ErrorCode, FormatError, PollInfo};

/// Jobs kept at once (running or finished and not yet collected).
pub const MAX_JOBS: usize = 16;
/// Token text kept per job, in bytes.
pub const TEXT: usize = 2048;
/// Chunks kept per job.
pub const ITEMS: usize = 256;
/// Model name in poll replies (the ring does not tell the control guest which model runs).
pub const MODEL: &[u8] = b"llm";

#[derive(Clone, Copy)]
struct Job {
    id: u32,
    stream: bool,
    end: Option<EndReason>,
    /// A conversation turn.
    session: bool,
    /// The error code of an `end` of `fail`.
    code: Option<ErrorCode>,
    plen: u32,
    max: u16,
    tokens: u32,
    text: [u8; TEXT],
    len: usize,
    ends: [u16; ITEMS],
    items: usize,
    read: usize,
    last_ms: u64,
}

const FREE: Job = Job {
    id: 0,
    stream: false,
    end: None,
    session: false,
    code: None,
    plen: 0,
    max: 0,
    tokens: 0,
    text: [0; TEXT],
    len: 0,
    ends: [0; ITEMS],
    items: 0,
    read: 0,
    last_ms: 0,
};

/// Counters of the job table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobStats {
    /// Jobs started.
    pub started: u64,
    /// Finished jobs dropped to make room before they were fully polled.
    pub evicted: u64,
    /// Chunks dropped because the job's buffer was full.
    pub dropped_chunks: u64,
    /// Chunks or ends for no known job.
    pub unknown: u64,
}

/// A chunk that arrived, as the caller must pass it on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrived {
    /// Kept for poll.
    Kept,
    /// A host-streamed job: send `STREAM id i tok` with this index.
    Stream {
        /// Index of the first token of the chunk.
        index: u32,
    },
    /// Dropped (counted).
    Dropped,
}

/// The table.
pub struct Jobs {
    slots: [Job; MAX_JOBS],
    next_id: u32,
    stats: JobStats,
}

impl Default for Jobs {
    fn default() -> Self {
        Self::new()
    }
}

impl Jobs {
    /// An empty table; ids start at 1.
    pub const fn new() -> Self {
        Jobs {
            slots: [FREE; MAX_JOBS],
            next_id: 1,
            stats: JobStats {
                started: 0,
                evicted: 0,
                dropped_chunks: 0,
                unknown: 0,
            },
        }
    }

    /// Counters.
    pub fn stats(&self) -> JobStats {
        self.stats
    }

    /// Jobs started and not finished.
    pub fn running(&self) -> usize {
        self.slots
            .iter()
            .filter(|j| j.id != 0 && j.end.is_none())
            .count()
    }

    fn find(&mut self, id: u32) -> Option<&mut Job> {
        self.slots.iter_mut().find(|j| j.id == id && id != 0)
    }

    /// Reserves a job; `None` if every slot holds a running job. A finished job is dropped
    /// (oldest first, counted if it still had unread tokens) to make room.
    pub fn start(&mut self, stream: bool, plen: u32, max: u16, now_ms: u64) -> Option<u32> {
        let slot = match self.slots.iter().position(|j| j.id == 0) {
            Some(i) => i,
            None => {
                let i = self
                    .slots
                    .iter()
                    .enumerate()
                    .filter(|(_, j)| j.end.is_some())
                    .min_by_key(|(_, j)| j.last_ms)
                    .map(|(i, _)| i)?;
                if self.slots[i].read < self.slots[i].items {
                    self.stats.evicted += 1;
                }
                i
            }
        };
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).unwrap_or(1).max(1);
        self.slots[slot] = Job {
            id,
            stream,
            plen,
            max,
            last_ms: now_ms,
            ..FREE
        };
        self.stats.started += 1;
        Some(id)
    }

    /// Forgets a job that never started (its request was refused).
    pub fn remove(&mut self, id: u32) {
        if let Some(j) = self.find(id) {
            *j = FREE;
        }
    }

    /// Tokens arrived for `id`.
    pub fn tokens(&mut self, id: u32, n: u16, text: &[u8], now_ms: u64) -> Arrived {
        let Some(j) = self.find(id) else {
            self.stats.unknown += 1;
            return Arrived::Dropped;
        };
        j.last_ms = now_ms;
        let index = j.tokens;
        j.tokens = j.tokens.saturating_add(u32::from(n));
        if j.stream {
            return Arrived::Stream { index };
        }
        if j.items == ITEMS || TEXT - j.len < text.len() {
            self.stats.dropped_chunks += 1;
            return Arrived::Dropped;
        }
        j.text[j.len..j.len + text.len()].copy_from_slice(text);
        j.len += text.len();
        j.ends[j.items] = j.len as u16;
        j.items += 1;
        Arrived::Kept
    }

    /// `id` ended (`code`: why, for `fail`); returns (tokens produced, host-streamed) or
    /// `None` for an unknown job. An end already recorded (e.g. cancel) is kept.
    pub fn finish(
        &mut self,
        id: u32,
        reason: EndReason,
        code: Option<ErrorCode>,
        now_ms: u64,
    ) -> Option<(u32, bool)> {
        let Some(j) = self.find(id) else {
            self.stats.unknown += 1;
            return None;
        };
        j.last_ms = now_ms;
        if j.end.is_none() {
            j.end = Some(reason);
            j.code = code.filter(|_| reason == EndReason::Fail);
        }
        Some((j.tokens, j.stream))
    }

    /// The end reason for a job that finished normally with `tokens` produced: `max` if it
    /// reached its `max_tokens`, else `eos`.
    pub fn natural_end(&mut self, id: u32, tokens: u32) -> EndReason {
        match self.find(id) {
            Some(j) if tokens >= u32::from(j.max) => EndReason::Max,
            _ => EndReason::Eos,
        }
    }

    /// The end reason of a finished job.
    pub fn end_of(&mut self, id: u32) -> Option<EndReason> {
        self.find(id).and_then(|j| j.end)
    }

    /// Marks `id` as a conversation turn.
    pub fn set_session(&mut self, id: u32, session: bool) {
        if let Some(j) = self.find(id) {
            j.session = session;
        }
    }

    /// Whether `id` is a conversation turn.
    pub fn has_session(&mut self, id: u32) -> bool {
        self.find(id).is_some_and(|j| j.session)
    }

    /// The error code of a job that ended `fail`.
    pub fn code_of(&mut self, id: u32) -> Option<ErrorCode> {
        self.find(id).and_then(|j| j.code)
    }

    /// Running jobs idle since before `cutoff_ms` (the LLM partition went away): ends them
    /// with `fail` and calls `f(id, tokens, host-streamed)` for each.
    pub fn expire(&mut self, cutoff_ms: u64, mut f: impl FnMut(u32, u32, bool)) {
        for j in self.slots.iter_mut() {
            if j.id != 0 && j.end.is_none() && j.last_ms < cutoff_ms {
                j.end = Some(EndReason::Fail);
                j.code = Some(ErrorCode::Unavailable);
                f(j.id, j.tokens, j.stream);
            }
        }
    }

    /// The `OK TOK ...` reply for a poll of `id` (at most `max` items); moves the cursor.
    pub fn poll(&mut self, id: u32, max: Option<u16>, out: &mut [u8]) -> Result<usize, ErrorCode> {
        let Some(j) = self.find(id) else {
            return Err(ErrorCode::NotFound);
        };
        let take = max.map_or(usize::MAX, usize::from);
        let first = j.read;
        let last = (first.saturating_add(take)).min(j.items);
        let ends = j.ends;
        let text = &j.text;
        let items = (first..last).map(|k| {
            let start = if k == 0 { 0 } else { usize::from(ends[k - 1]) };
            &text[start..usize::from(ends[k])]
        });
        let info = PollInfo {
            id,
            done: j.end.is_some() && last == j.items,
            end: j.end.map(|r| (r, j.code)),
            plen: j.plen,
            model: MODEL,
        };
        match write_poll(out, &info, items) {
            Ok(w) => {
                j.read = first + w.items;
                Ok(w.len)
            }
            Err(FormatError::Overflow | FormatError::BadKey) => Err(ErrorCode::Internal),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll(j: &mut Jobs, id: u32, max: Option<u16>) -> String {
        let mut out = [0u8; 512];
        let n = j.poll(id, max, &mut out).unwrap();
        String::from_utf8(out[..n].to_vec()).unwrap()
    }

    #[test]
    fn poll_returns_unread_chunks_then_done() {
        let mut j = Jobs::new();
        let id = j.start(false, 14, 4, 0).unwrap();
        assert_eq!(
            poll(&mut j, id, None),
            "OK TOK id=1 n=0 done=0 plen=14 model=llm items=\n"
        );
        assert_eq!(j.tokens(id, 1, b"Op", 1), Arrived::Kept);
        assert_eq!(j.tokens(id, 1, b" B", 2), Arrived::Kept);
        assert_eq!(
            poll(&mut j, id, Some(1)),
            "OK TOK id=1 n=1 done=0 plen=14 model=llm items=Op\n"
        );
        assert_eq!(j.finish(id, EndReason::Max, None, 3), Some((2, false)));
        assert_eq!(
            poll(&mut j, id, None),
            "OK TOK id=1 n=1 done=1 end=max plen=14 model=llm items= B\n"
        );
        assert_eq!(
            poll(&mut j, id, None),
            "OK TOK id=1 n=0 done=1 end=max plen=14 model=llm items=\n"
        );
        let mut out = [0u8; 64];
        assert_eq!(j.poll(99, None, &mut out), Err(ErrorCode::NotFound));
    }

    #[test]
    fn streamed_jobs_index_tokens_and_keep_nothing() {
        let mut j = Jobs::new();
        let id = j.start(true, 3, 4, 0).unwrap();
        assert_eq!(j.tokens(id, 2, b"ab", 1), Arrived::Stream { index: 0 });
        assert_eq!(j.tokens(id, 1, b"c", 1), Arrived::Stream { index: 2 });
        assert_eq!(j.finish(id, EndReason::Eos, None, 2), Some((3, true)));
        assert_eq!(
            poll(&mut j, id, None),
            "OK TOK id=1 n=0 done=1 end=eos plen=3 model=llm items=\n"
        );
    }

    #[test]
    fn a_failed_job_polls_as_failed_with_its_code() {
        let mut j = Jobs::new();
        let id = j.start(false, 3, 4, 0).unwrap();
        j.tokens(id, 1, b"a", 1);
        j.finish(id, EndReason::Fail, Some(ErrorCode::Internal), 2);
        assert_eq!(
            poll(&mut j, id, None),
            "OK TOK id=1 n=1 done=1 end=fail code=0x0a plen=3 model=llm items=a\n"
        );
        // A code is kept only for a failure.
        let id = j.start(false, 3, 4, 0).unwrap();
        j.finish(id, EndReason::Eos, Some(ErrorCode::Internal), 2);
        assert_eq!(j.code_of(id), None);
    }

    #[test]
    fn full_table_refuses_then_evicts_finished_jobs() {
        let mut j = Jobs::new();
        let ids: Vec<u32> = (0..MAX_JOBS)
            .map(|k| j.start(false, 1, 4, k as u64).unwrap())
            .collect();
        assert_eq!(j.start(false, 1, 4, 100), None);
        j.tokens(ids[3], 1, b"x", 5);
        j.finish(ids[3], EndReason::Eos, None, 5);
        let new = j.start(false, 1, 4, 200).unwrap();
        assert_eq!(new, MAX_JOBS as u32 + 1);
        assert_eq!(j.stats().evicted, 1);
        let mut out = [0u8; 64];
        assert_eq!(j.poll(ids[3], None, &mut out), Err(ErrorCode::NotFound));
    }

    #[test]
    fn overflow_and_unknown_are_counted_and_idle_jobs_expire() {
        let mut j = Jobs::new();
        let id = j.start(false, 1, 4, 0).unwrap();
        let big = [b'a'; TEXT];
        assert_eq!(j.tokens(id, 1, &big, 0), Arrived::Kept);
        assert_eq!(j.tokens(id, 1, b"b", 0), Arrived::Dropped);
        assert_eq!(j.tokens(77, 1, b"b", 0), Arrived::Dropped);
        assert_eq!((j.stats().dropped_chunks, j.stats().unknown), (1, 1));
        let mut seen = Vec::new();
        j.expire(10, |id, n, s| seen.push((id, n, s)));
        assert_eq!(
            seen,
            [(id, 2, false)],
            "both chunks were produced, one kept"
        );
        assert_eq!(j.end_of(id), Some(EndReason::Fail));
        assert_eq!(j.code_of(id), Some(ErrorCode::Unavailable));
        assert_eq!(j.running(), 0);
        let mut out = [0u8; 128];
        let n = j.poll(id, Some(0), &mut out).unwrap();
        assert!(
            std::str::from_utf8(&out[..n]).unwrap().contains("done=0"),
            "tokens still held: not done yet"
        );
    }
}
