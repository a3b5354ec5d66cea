//! The conversations the LLM partition keeps (pure, host tested; generic over what a
//! conversation holds, the engine session with its KV cache in the guest).
//!
//! A conversation has an id, an owner (who opened it: the shell or the host), the tokens of
//! the conversation so far, and its engine state, taken out while a turn runs. The table holds
//! at most `capacity` conversations (the memory bound: each holds a KV cache); opening one
//! more evicts the least recently used idle one, counted, and its id is remembered so its
//! owner learns it was evicted (rather than "unknown") the next time it uses it. An id used by
//! anyone but its owner is unknown to them.

use alloc::vec::Vec;

/// Who opened a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// The LLM shell.
    Shell,
    /// The host (through the control guest).
    Host,
}

impl Owner {
    /// As `llmctl session list` shows it.
    pub fn name(self) -> &'static str {
        match self {
            Owner::Shell => "shell",
            Owner::Host => "host",
        }
    }
}

/// Why a conversation could not be opened or continued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// No conversation with that id belongs to the caller.
    Unknown,
    /// It was evicted (least recently used) to make room; open a new one.
    Evicted,
    /// A turn of it is running.
    Busy,
    /// The id is taken (opening twice).
    Exists,
    /// Every conversation is in use: none can be evicted.
    Full,
}

/// One conversation.
#[derive(Debug)]
pub struct Entry<S> {
    /// Its id.
    pub id: u64,
    /// Who opened it.
    pub owner: Owner,
    /// The conversation's tokens so far (every turn and reply).
    pub tokens: Vec<u32>,
    /// Its engine state; `None` while a turn runs.
    pub state: Option<S>,
    /// Turns run.
    pub turns: u32,
    /// When it was last used (the table's clock).
    pub used: u64,
}

/// Evicted ids remembered for their owners.
const EVICTED_KEPT: usize = 32;

/// The table.
#[derive(Debug)]
pub struct SessionTable<S> {
    entries: Vec<Entry<S>>,
    capacity: usize,
    clock: u64,
    evicted: Vec<(u64, Owner)>,
    /// Conversations evicted since boot.
    pub evictions: u64,
    /// Conversations opened since boot.
    pub opened: u64,
}

impl<S> SessionTable<S> {
    /// An empty table for at most `capacity` conversations.
    pub const fn new(capacity: usize) -> Self {
        SessionTable {
            entries: Vec::new(),
            capacity,
            clock: 0,
            evicted: Vec::new(),
            evictions: 0,
            opened: 0,
        }
    }

    /// The most conversations kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Changes the bound (a model load); conversations beyond it are evicted, oldest first.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        while self.entries.len() > capacity {
            if self.evict_lru().is_none() {
                break;
            }
        }
    }

    /// The conversations.
    pub fn entries(&self) -> &[Entry<S>] {
        &self.entries
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn evict_lru(&mut self) -> Option<u64> {
        let i = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.state.is_some())
            .min_by_key(|(_, e)| e.used)
            .map(|(i, _)| i)?;
        let e = self.entries.swap_remove(i);
        if self.evicted.len() == EVICTED_KEPT {
            self.evicted.remove(0);
        }
        self.evicted.push((e.id, e.owner));
        self.evictions += 1;
        Some(e.id)
    }

    /// Opens a conversation `id` for `owner`, running its first turn now (so it starts in
    /// use: put it back with [`SessionTable::put_back`]). Returns the id of a conversation
    /// evicted to make room, if any.
    ///
    /// # Errors
    /// [`TableError::Exists`], [`TableError::Full`] (every conversation is running a turn).
    pub fn open(&mut self, id: u64, owner: Owner) -> Result<Option<u64>, TableError> {
        if self.entries.iter().any(|e| e.id == id) || self.capacity == 0 {
            return Err(if self.capacity == 0 {
                TableError::Full
            } else {
                TableError::Exists
            });
        }
        let evicted = if self.entries.len() >= self.capacity {
            Some(self.evict_lru().ok_or(TableError::Full)?)
        } else {
            None
        };
        let used = self.tick();
        self.entries.push(Entry {
            id,
            owner,
            tokens: Vec::new(),
            state: None,
            turns: 0,
            used,
        });
        self.opened += 1;
        Ok(evicted)
    }

    /// Takes conversation `id` of `owner` for a turn: its tokens so far and its state (kept
    /// out until [`SessionTable::put_back`]).
    ///
    /// # Errors
    /// [`TableError::Unknown`] (not the caller's, or never opened), [`TableError::Evicted`],
    /// [`TableError::Busy`].
    pub fn take(&mut self, id: u64, owner: Owner) -> Result<(Vec<u32>, S), TableError> {
        let used = self.tick();
        let Some(e) = self
            .entries
            .iter_mut()
            .find(|e| e.id == id && e.owner == owner)
        else {
            return Err(if self.evicted.contains(&(id, owner)) {
                TableError::Evicted
            } else {
                TableError::Unknown
            });
        };
        let state = e.state.take().ok_or(TableError::Busy)?;
        e.used = used;
        Ok((core::mem::take(&mut e.tokens), state))
    }

    /// Ends a turn of `id`: the conversation's tokens and its state. Returns false if the
    /// conversation is gone (dropped meanwhile): the state is then dropped too.
    pub fn put_back(&mut self, id: u64, tokens: Vec<u32>, state: S, turn_done: bool) -> bool {
        let used = self.tick();
        match self.entries.iter_mut().find(|e| e.id == id) {
            Some(e) => {
                e.tokens = tokens;
                e.state = Some(state);
                e.used = used;
                e.turns += u32::from(turn_done);
                true
            }
            None => false,
        }
    }

    /// Forgets conversation `id` of `owner` (not while a turn runs).
    ///
    /// # Errors
    /// [`TableError::Unknown`], [`TableError::Busy`].
    pub fn drop_session(&mut self, id: u64, owner: Option<Owner>) -> Result<(), TableError> {
        let i = self
            .entries
            .iter()
            .position(|e| e.id == id && owner.is_none_or(|o| o == e.owner))
            .ok_or(TableError::Unknown)?;
        if self.entries[i].state.is_none() {
            return Err(TableError::Busy);
        }
        self.entries.swap_remove(i);
        Ok(())
    }

    /// Forgets a conversation whose first turn was refused before its opener learned its id
    /// (it holds nothing anyone could continue). Not counted as an eviction.
    pub fn abandon(&mut self, id: u64) {
        self.entries
            .retain(|e| e.id != id || e.state.is_some() || e.turns > 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn turns_take_and_put_back_and_only_the_owner_continues() {
        let mut t: SessionTable<&str> = SessionTable::new(2);
        assert_eq!(t.open(7, Owner::Host), Ok(None));
        assert!(t.put_back(7, vec![1, 2, 3], "kv", true));
        assert_eq!(t.take(7, Owner::Shell), Err(TableError::Unknown));
        assert_eq!(t.take(8, Owner::Host), Err(TableError::Unknown));
        let (tokens, kv) = t.take(7, Owner::Host).unwrap();
        assert_eq!((tokens, kv), (vec![1, 2, 3], "kv"));
        assert_eq!(t.take(7, Owner::Host), Err(TableError::Busy));
        assert_eq!(t.drop_session(7, Some(Owner::Host)), Err(TableError::Busy));
        assert!(t.put_back(7, vec![1, 2, 3, 4], "kv", true));
        assert_eq!(t.entries()[0].turns, 2);
        assert_eq!(t.open(7, Owner::Host), Err(TableError::Exists));
        assert_eq!(
            t.drop_session(7, Some(Owner::Shell)),
            Err(TableError::Unknown)
        );
        assert_eq!(t.drop_session(7, None), Ok(()));
        assert!(!t.put_back(7, vec![], "kv", true), "gone: dropped");
    }

    #[test]
    fn the_least_recently_used_idle_one_is_evicted_and_its_owner_told() {
        let mut t: SessionTable<u8> = SessionTable::new(2);
        t.open(1, Owner::Host).unwrap();
        t.put_back(1, vec![], 1, true);
        t.open(2, Owner::Shell).unwrap();
        t.put_back(2, vec![], 2, true);
        // 1 is used again: 2 is now the least recently used.
        let (tok, s) = t.take(1, Owner::Host).unwrap();
        t.put_back(1, tok, s, true);
        assert_eq!(t.open(3, Owner::Host), Ok(Some(2)));
        assert_eq!(t.evictions, 1);
        assert_eq!(t.take(2, Owner::Shell), Err(TableError::Evicted));
        assert_eq!(
            t.take(2, Owner::Host),
            Err(TableError::Unknown),
            "not theirs"
        );
        // Conversations running a turn are never evicted.
        let _running = t.take(1, Owner::Host).unwrap();
        assert_eq!(
            t.open(4, Owner::Host),
            Err(TableError::Full),
            "3 runs its first turn"
        );
        t.put_back(3, vec![], 3, true);
        assert_eq!(t.open(4, Owner::Host), Ok(Some(3)));
        assert_eq!(t.entries().len(), 2);
    }

    #[test]
    fn a_smaller_bound_evicts_and_a_failed_first_turn_leaves_nothing() {
        let mut t: SessionTable<u8> = SessionTable::new(3);
        for id in 1..=3 {
            t.open(id, Owner::Host).unwrap();
            t.put_back(id, vec![], 0, true);
        }
        t.set_capacity(1);
        assert_eq!((t.capacity(), t.entries().len()), (1, 1));
        assert_eq!(
            (t.entries()[0].owner.name(), Owner::Shell.name()),
            ("host", "shell")
        );
        assert_eq!(t.entries()[0].id, 3);
        assert_eq!(t.evictions, 2);
        t.set_capacity(2);
        t.open(9, Owner::Shell).unwrap();
        t.abandon(9);
        assert_eq!(t.take(9, Owner::Shell), Err(TableError::Unknown));
        assert_eq!(t.entries().len(), 1);
        // A conversation with a turn behind it, or idle, is never abandoned.
        t.abandon(3);
        assert_eq!(t.entries().len(), 1);
    }
}
