//! Streaming generation: prompt prefill in bounded chunks, then one token per call, and
//! conversations that keep their KV cache across turns ([`Session::reuse_prefix`]).

use crate::error::{Error, Result};
use crate::forward::{forward_in, KvCache, Logits, Workspace};
use crate::model::Model;
use crate::parallel::Parallel;
use crate::sampler::{Sampler, SamplerConfig};
use alloc::format;
use alloc::vec::Vec;

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The model produced a stop token.
    StopToken,
    /// `max_new_tokens` were generated.
    MaxTokens,
    /// The KV cache is full.
    ContextFull,
}

/// Settings for a [`Session`].
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// KV cache capacity in tokens (at most the model's context length).
    pub context: usize,
    /// Tokens to generate at most.
    pub max_new_tokens: usize,
    /// Sampling parameters.
    pub sampler: SamplerConfig,
    /// Tokens that end generation (not returned).
    pub stop_tokens: Vec<u32>,
}

/// What [`Session::reuse_prefix`] kept of the cache and what it left to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixReuse {
    /// Leading tokens whose KV cache entries were kept (the common prefix).
    pub reused: usize,
    /// Tokens queued to be computed (the rest of the new sequence).
    pub computed: usize,
}

/// One generation: a KV cache, a sampler and the queue of prompt tokens.
pub struct Session<'s, 'a> {
    model: &'s Model<'a>,
    par: &'s dyn Parallel,
    cache: KvCache,
    /// The tokens whose keys and values are in `cache`, in position order.
    cached: Vec<u32>,
    sampler: Sampler,
    cfg: SessionConfig,
    pending: Vec<u32>,
    consumed: usize,
    /// Scratch of the forward passes; holds the logits of the last one.
    ws: Workspace,
    /// Whether `ws` holds logits not yet sampled from.
    logits: bool,
    to_feed: Option<u32>,
    generated: usize,
    stopped: Option<StopReason>,
}

impl<'s, 'a> Session<'s, 'a> {
    /// Creates a session; allocates the KV cache.
    pub fn new(model: &'s Model<'a>, par: &'s dyn Parallel, cfg: SessionConfig) -> Result<Self> {
        Ok(Session {
            cache: KvCache::new(model, cfg.context)?,
            cached: Vec::new(),
            sampler: Sampler::new(cfg.sampler)?,
            model,
            par,
            cfg,
            pending: Vec::new(),
            consumed: 0,
            ws: Workspace::default(),
            logits: false,
            to_feed: None,
            generated: 0,
            stopped: None,
        })
    }

    fn check_vocab(&self, tokens: &[u32]) -> Result<()> {
        let v = self.model.config.vocab_size;
        if let Some(&t) = tokens.iter().find(|&&t| t as usize >= v) {
            return Err(Error::InvalidArgument(format!(
                "token {t} is outside the vocabulary ({v})"
            )));
        }
        Ok(())
    }

    /// Queues prompt tokens (checked against the vocabulary and the context) after
    /// everything so far: a follow-up continues the same cache, sampler state and
    /// `max_new_tokens` budget. The tokens enter the penalty window.
    pub fn feed(&mut self, tokens: &[u32]) -> Result<()> {
        self.check_vocab(tokens)?;
        let queued = self.cache.len() + self.pending.len() - self.consumed
            + usize::from(self.to_feed.is_some())
            + tokens.len();
        if queued > self.cache.capacity() {
            return Err(Error::ContextFull {
                capacity: self.cache.capacity(),
            });
        }
        if let Some(t) = self.to_feed.take() {
            self.pending.push(t);
        }
        self.pending.extend_from_slice(tokens);
        for &t in tokens {
            self.sampler.accept(t);
        }
        self.stopped = None;
        Ok(())
    }

    /// Starts a new request over the full token sequence `tokens` (for a chat: every
    /// turn so far plus the new one), keeping the KV cache of the longest prefix it
    /// shares with the tokens already in the cache and queueing only the rest. At least
    /// the last token is always recomputed, for its logits.
    ///
    /// The request gets its own `max_new_tokens` and a fresh sampler (seeded anew, its
    /// penalty window filled from `tokens`), so what follows is bit-identical to a new
    /// session fed `tokens`. A sequence longer than the context is refused with
    /// [`Error::ContextFull`] (never truncated); like every error here it changes
    /// nothing.
    pub fn reuse_prefix(
        &mut self,
        tokens: &[u32],
        max_new_tokens: usize,
        sampler: SamplerConfig,
    ) -> Result<PrefixReuse> {
        if tokens.is_empty() {
            return Err(Error::InvalidArgument("empty token sequence".into()));
        }
        self.check_vocab(tokens)?;
        if tokens.len() > self.cache.capacity() {
            return Err(Error::ContextFull {
                capacity: self.cache.capacity(),
            });
        }
        let mut fresh = Sampler::new(sampler)?;
        for &t in tokens {
            fresh.accept(t);
        }
        let common = self
            .cached
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count()
            .min(tokens.len() - 1);
        self.cache.truncate(common);
        self.cached.truncate(common);
        self.pending.clear();
        self.pending.extend_from_slice(&tokens[common..]);
        self.consumed = 0;
        self.logits = false;
        self.to_feed = None;
        self.generated = 0;
        self.stopped = None;
        self.cfg.max_new_tokens = max_new_tokens;
        self.cfg.sampler = sampler;
        self.sampler = fresh;
        Ok(PrefixReuse {
            reused: common,
            computed: tokens.len() - common,
        })
    }

    /// The tokens whose keys and values are in the KV cache, in position order.
    pub fn cached_tokens(&self) -> &[u32] {
        &self.cached
    }

    /// Prompt tokens queued but not yet run.
    pub fn pending(&self) -> usize {
        self.pending.len() - self.consumed
    }

    /// Whether the next [`Session::next_token`] runs a forward pass (it feeds the previous
    /// token). The first token after a prefill is sampled from the prefill's logits, so it
    /// costs no pass; speed figures count passes, as llama.cpp's "eval runs" do.
    pub fn next_token_runs_forward(&self) -> bool {
        self.stopped.is_none()
            && self.pending() == 0
            && self.generated < self.cfg.max_new_tokens
            && self.to_feed.is_some()
    }

    /// Runs at most `max` queued prompt tokens as one batch; returns how many remain.
    pub fn prefill(&mut self, max: usize) -> Result<usize> {
        let n = self.pending().min(max.max(1));
        if n == 0 {
            return Ok(0);
        }
        let chunk = &self.pending[self.consumed..self.consumed + n];
        let last = self.consumed + n == self.pending.len();
        let want = if last { Logits::Last } else { Logits::None };
        forward_in(
            self.model,
            &mut self.cache,
            &mut self.ws,
            self.par,
            chunk,
            want,
        )?;
        self.cached.extend_from_slice(chunk);
        self.consumed += n;
        if last {
            self.logits = true;
            self.pending.clear();
            self.consumed = 0;
        }
        Ok(self.pending())
    }

    /// Produces the next token, or `None` when generation has stopped (see
    /// [`Session::stop_reason`]). Any queued prompt is prefilled first.
    pub fn next_token(&mut self) -> Result<Option<u32>> {
        if self.stopped.is_some() {
            return Ok(None);
        }
        while self.pending() > 0 {
            self.prefill(64)?;
        }
        if self.generated >= self.cfg.max_new_tokens {
            self.stopped = Some(StopReason::MaxTokens);
            return Ok(None);
        }
        if let Some(t) = self.to_feed.take() {
            if self.cache.len() >= self.cache.capacity() {
                self.to_feed = Some(t);
                self.stopped = Some(StopReason::ContextFull);
                return Ok(None);
            }
            forward_in(
                self.model,
                &mut self.cache,
                &mut self.ws,
                self.par,
                &[t],
                Logits::Last,
            )?;
            self.logits = true;
            self.cached.push(t);
        }
        if !core::mem::take(&mut self.logits) {
            return Err(Error::InvalidArgument("no prompt was fed".into()));
        }
        let tok = self.sampler.sample(self.ws.logits());
        if self.cfg.stop_tokens.contains(&tok) {
            self.stopped = Some(StopReason::StopToken);
            return Ok(None);
        }
        self.sampler.accept(tok);
        self.generated += 1;
        self.to_feed = Some(tok);
        Ok(Some(tok))
    }

    /// Why generation stopped, once it has.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stopped
    }

    /// Positions in the KV cache.
    pub fn position(&self) -> usize {
        self.cache.len()
    }

    /// Bytes held by the KV cache.
    pub fn kv_bytes(&self) -> usize {
        self.cache.byte_len()
    }

    /// Tokens generated so far.
    pub fn generated(&self) -> usize {
        self.generated
    }
}
