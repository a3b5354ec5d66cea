//! Conversations: chat turns whose KV cache the partition keeps between turns
//! ([`super::session_table`] holds them, bounded and evicted least recently used). A turn's
//! tokens are the conversation so far (every earlier turn and reply, as the model's chat
//! template writes them: `Tokenizer::encode_chat` then `encode_chat_turn` per turn) plus the
//! new turn; the engine session keeps the KV cache of the longest prefix it already holds
//! (`Session::reuse_prefix`) and computes only the rest, so a reply equals that of a new
//! session fed the whole conversation. A conversation that would outgrow its context is
//! refused (`ContextFull`), never truncated.

use alloc::format;
use alloc::vec::Vec;

use shared_ring::message::SessionRef;
use sis_engine::{SamplerConfig, Session, SessionConfig};

use super::request::{JobError, JobRequest};
use super::Service;
use crate::model::Loaded;
use crate::parallel::POOL;

/// Tokens of context a conversation may grow to (or the model's, if smaller).
pub const SESSION_CONTEXT: usize = 1024;
/// Most conversations kept at once.
pub const MAX_SESSIONS: usize = 8;
/// Memory for the conversations' KV caches; fewer conversations are kept when each needs
/// more (at least one).
pub const SESSION_MEMORY: usize = 96 << 20;

/// A turn running in a conversation.
pub(super) struct Turn {
    /// The conversation.
    pub(super) id: u64,
    /// Its tokens before this turn (kept if the turn does not complete).
    prev: Vec<u32>,
    /// This turn opened the conversation.
    opened: bool,
    /// The whole sequence of this turn (conversation so far + the new turn).
    tokens: Vec<u32>,
}

impl Turn {
    /// Tokens of the turn's whole sequence.
    pub(super) fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Its last token (the detokenizer continues after it).
    pub(super) fn last(&self) -> Option<u32> {
        self.tokens.last().copied()
    }
}

/// (conversations kept, their context in tokens, KV cache bytes each) for `loaded`.
pub(super) fn bounds(loaded: &Loaded) -> (usize, usize, usize) {
    let c = &loaded.model.config;
    let ctx = SESSION_CONTEXT.min(c.max_seq_len);
    // Keys and values, binary16, every layer.
    let kv = c.n_layers * ctx * c.kv_dim() * 2 * 2;
    let n = (SESSION_MEMORY / kv.max(1)).clamp(1, MAX_SESSIONS);
    (n, ctx, kv)
}

impl Service {
    fn fresh_session(
        &self,
        loaded: &'static Loaded,
        req: &JobRequest,
        sampler: SamplerConfig,
        context: usize,
    ) -> Result<Session<'static, 'static>, JobError> {
        let cfg = SessionConfig {
            context,
            max_new_tokens: req.max_tokens as usize,
            sampler,
            stop_tokens: loaded.tokenizer.stop.clone(),
        };
        Session::new(&loaded.model, &POOL, cfg).map_err(|e| JobError::Internal(format!("{e}")))
    }

    /// Starts a turn of conversation `r` for `req`: opens it or takes it from the table,
    /// builds the turn's token sequence and queues what the KV cache does not hold yet.
    /// Returns the engine session, the turn and how many prompt tokens were reused.
    pub(super) fn start_turn(
        &self,
        loaded: &'static Loaded,
        req: &JobRequest,
        r: SessionRef,
        sampler: SamplerConfig,
    ) -> Result<(Session<'static, 'static>, Turn, usize), JobError> {
        let context = self.state.lock().session_context;
        let (prev, engine) = if r.open {
            self.state
                .lock()
                .sessions
                .open(r.id, req.owner)
                .map_err(JobError::Session)?;
            match self.fresh_session(loaded, req, sampler, context) {
                Ok(s) => (Vec::new(), s),
                Err(e) => {
                    self.state.lock().sessions.abandon(r.id);
                    return Err(e);
                }
            }
        } else {
            self.state
                .lock()
                .sessions
                .take(r.id, req.owner)
                .map_err(JobError::Session)?
        };
        let put_back = |prev: Vec<u32>, engine, e: JobError| {
            let mut st = self.state.lock();
            if r.open {
                // Refused before anyone learned the id: nothing to keep.
                st.sessions.abandon(r.id);
            } else {
                st.sessions.put_back(r.id, prev, engine, false);
            }
            Err(e)
        };
        // `--cold` (the benchmark's reference): a new KV cache, everything computed again.
        let mut engine = if req.cold {
            match self.fresh_session(loaded, req, sampler, context) {
                Ok(s) => s,
                Err(e) => return put_back(prev, engine, e),
            }
        } else {
            engine
        };
        let system = Some(req.system.as_str()).filter(|s| !s.is_empty());
        let turn = if prev.is_empty() {
            loaded.tokenizer.encode_chat(system, &req.prompt)
        } else {
            loaded.tokenizer.encode_chat_turn(&req.prompt).map(|t| {
                let mut all = prev.clone();
                all.extend(t);
                all
            })
        };
        let tokens = match turn {
            Ok(t) => t,
            Err(e) => return put_back(prev, engine, JobError::BadRequest(format!("--chat: {e}"))),
        };
        if tokens.len() + req.max_tokens as usize > context {
            let e = JobError::ContextFull(format!(
                "the conversation has {} tokens + {} new ones, more than the session's context of {context}: open a new session",
                tokens.len(),
                req.max_tokens
            ));
            return put_back(prev, engine, e);
        }
        match engine.reuse_prefix(&tokens, req.max_tokens as usize, sampler) {
            Ok(reuse) => Ok((
                engine,
                Turn {
                    id: r.id,
                    prev,
                    opened: r.open,
                    tokens,
                },
                reuse.reused,
            )),
            Err(e) => put_back(prev, engine, JobError::BadRequest(format!("{e}"))),
        }
    }

    /// A turn refused before it was accepted (quota, queue): the conversation stays as it was,
    /// or, if this turn was to open it, is forgotten (its opener never learned the id).
    pub(super) fn refuse_turn(&self, turn: Turn, engine: Session<'static, 'static>) {
        if turn.opened {
            self.state.lock().sessions.abandon(turn.id);
            drop(engine);
        } else {
            self.end_turn(turn, engine, &[], false);
        }
    }

    /// Ends a turn: a completed one adds itself and the reply (`generated`) to the
    /// conversation; one that failed or was cancelled leaves the conversation as it was (its
    /// KV cache keeps whatever it computed: the next turn reuses what still matches).
    pub(super) fn end_turn(
        &self,
        turn: Turn,
        engine: Session<'static, 'static>,
        generated: &[u32],
        completed: bool,
    ) {
        let tokens = if completed {
            let mut t = turn.tokens;
            t.extend_from_slice(generated);
            t
        } else {
            turn.prev
        };
        self.state
            .lock()
            .sessions
            .put_back(turn.id, tokens, engine, completed);
    }
}

/// One line of `llmctl session list`.
pub struct SessionInfo {
    /// Its id.
    pub id: u64,
    /// Who opened it.
    pub owner: &'static str,
    /// Tokens of the conversation so far.
    pub tokens: usize,
    /// Turns completed.
    pub turns: u32,
    /// A turn is running.
    pub busy: bool,
}

/// What `llmctl status` says about conversations.
pub struct SessionSummary {
    /// Kept now, and at most.
    pub open: usize,
    /// See `open`.
    pub max: usize,
    /// Context of each, tokens, and its KV cache bytes.
    pub context: usize,
    /// See `context`.
    pub kv_bytes: usize,
    /// Opened and evicted since boot.
    pub opened: u64,
    /// See `opened`.
    pub evicted: u64,
}

impl Service {
    /// The conversations kept.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let st = self.state.lock();
        st.sessions
            .entries()
            .iter()
            .map(|e| SessionInfo {
                id: e.id,
                owner: e.owner.name(),
                tokens: e.tokens.len(),
                turns: e.turns,
                busy: e.state.is_none(),
            })
            .collect()
    }

    /// Counters of the conversations.
    pub fn session_summary(&self) -> SessionSummary {
        let st = self.state.lock();
        SessionSummary {
            open: st.sessions.entries().len(),
            max: st.sessions.capacity(),
            context: st.session_context,
            kv_bytes: st.session_kv_bytes,
            opened: st.sessions.opened,
            evicted: st.sessions.evictions,
        }
    }

    /// Drops conversation `id` (whoever owns it: the console is the partition's operator).
    ///
    /// # Errors
    /// Unknown, or a turn of it is running.
    pub fn drop_session(&self, id: u64) -> Result<(), JobError> {
        // Dropping frees the KV cache: take it out of the lock before it goes.
        self.state
            .lock()
            .sessions
            .drop_session(id, None)
            .map_err(JobError::Session)
    }
}
