//! A small cache of recent replies keyed by (token, v1 `seq`), so the guest can answer a
//! retried request (sent again because its reply was lost) without running it twice.
//!
//! Use it only after the token has been allowed, so a replay never bypasses auth or the rate
//! limiter: `check` → `lookup` → on a miss run the command and `store` its reply line.
//! Requests with `seq == 0` (all v0 requests) are never cached.

use crate::auth::ct_eq_u64;

#[derive(Clone, Copy)]
struct Entry<const LINE: usize> {
    used: bool,
    token: u64,
    seq: u32,
    len: usize,
    line: [u8; LINE],
}

/// Counters of a [`ReplayCache`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups with a non-zero seq that found nothing.
    pub misses: u64,
    /// Replies stored.
    pub stored: u64,
    /// Replies not stored because they were longer than `LINE`.
    pub too_long: u64,
    /// Entries overwritten while still valid (oldest first).
    pub evicted: u64,
}

/// Fixed-size reply cache: `SLOTS` entries of up to `LINE` bytes, replaced oldest first.
pub struct ReplayCache<const SLOTS: usize, const LINE: usize> {
    entries: [Entry<LINE>; SLOTS],
    next: usize,
    stats: ReplayStats,
}

impl<const SLOTS: usize, const LINE: usize> Default for ReplayCache<SLOTS, LINE> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const SLOTS: usize, const LINE: usize> ReplayCache<SLOTS, LINE> {
    /// An empty cache.
    pub const fn new() -> Self {
        ReplayCache {
            entries: [Entry {
                used: false,
                token: 0,
                seq: 0,
                len: 0,
                line: [0; LINE],
            }; SLOTS],
            next: 0,
            stats: ReplayStats {
                hits: 0,
                misses: 0,
                stored: 0,
                too_long: 0,
                evicted: 0,
            },
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> ReplayStats {
        self.stats
    }

    fn find(&self, token: u64, seq: u32) -> Option<usize> {
        // Tokens are compared in constant time; every slot is examined.
        let mut found = None;
        for (i, e) in self.entries.iter().enumerate() {
            let same = e.used & (e.seq == seq) & ct_eq_u64(e.token, token);
            if same && found.is_none() {
                found = Some(i);
            }
        }
        found
    }

    /// The cached reply line for (token, seq), if any. `seq == 0` never hits.
    pub fn lookup(&mut self, token: u64, seq: u32) -> Option<&[u8]> {
        if seq == 0 {
            return None;
        }
        match self.find(token, seq) {
            Some(i) => {
                self.stats.hits += 1;
                let e = &self.entries[i];
                Some(&e.line[..e.len])
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Remember `line` as the reply to (token, seq). Returns false (and stores nothing) for
    /// `seq == 0`, or a line longer than `LINE` (counted in `too_long`).
    pub fn store(&mut self, token: u64, seq: u32, line: &[u8]) -> bool {
        if seq == 0 || SLOTS == 0 {
            return false;
        }
        if line.len() > LINE {
            self.stats.too_long += 1;
            return false;
        }
        let slot = match self.find(token, seq) {
            Some(i) => i,
            None => {
                let i = self.next;
                self.next = (self.next + 1) % SLOTS;
                if self.entries[i].used {
                    self.stats.evicted += 1;
                }
                i
            }
        };
        let e = &mut self.entries[slot];
        e.used = true;
        e.token = token;
        e.seq = seq;
        e.len = line.len();
        e.line[..line.len()].copy_from_slice(line);
        self.stats.stored += 1;
        true
    }
}
