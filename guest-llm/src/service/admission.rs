//! Admission of a queued request: model loaded, sampling values in the engine's ranges,
//! server exists, prompt tokenized (the model's
//! chat turns with `--chat`), prompt + `max_tokens` fit the model's context, an engine session
//! with the prompt fed, then the scheduler's own admission (queue and token quota). A refusal
//! reaches the sink as an error and is audited with the reject bit.

use alloc::format;
use alloc::vec::Vec;

use shared_ring::audit::AuditEntry;
use sis_engine::{Session, SessionConfig, StopStrings};
use sis_sched::JobSpec;

use super::conversation::Turn;
use super::inbox::Pending;
use super::reply_text::ReplyText;
use super::request::{sampler_config, JobError, JobRequest, ReplySink};
use super::step::Job;
use super::{audit, Service, DEFAULT_SERVER};
use crate::model::{self, Loaded};
use crate::parallel::POOL;

impl Service {
    /// Admits one queued request (or reports why not).
    pub(super) fn admit(&self, p: Pending, now: u64) {
        let Pending { req, sink } = p;
        let entry = AuditEntry {
            op: req.kind.op() as u16,
            ..AuditEntry::default()
        };
        let fail = |e: JobError, entry: AuditEntry| {
            audit::reject(entry);
            sink.failed(req.tag, &e);
        };
        let Some(loaded) = model::get() else {
            return fail(JobError::NoModel, entry);
        };
        // Out-of-range sampling values are the caller's error, named by the engine.
        let sampler = sampler_config(&req.sampling);
        if let Err(e) = sampler.validate() {
            return fail(JobError::BadRequest(format!("{e}")), entry);
        }
        let stops = match StopStrings::new(&req.stop) {
            Ok(s) => s,
            Err(e) => return fail(JobError::BadRequest(format!("{e}")), entry),
        };
        let server_name = if req.server.is_empty() {
            DEFAULT_SERVER
        } else {
            req.server.as_str()
        };
        let Some(settings) = self.server_settings(server_name) else {
            return fail(
                JobError::BadRequest(format!("no server '{server_name}'")),
                entry,
            );
        };
        let entry = AuditEntry {
            wcet_cycles: settings.wcet_cycles,
            period_ns: settings.period_ns,
            tokens: 0,
            ..entry
        };
        if !req.chat && !req.system.is_empty() {
            return fail(
                JobError::BadRequest("a system message needs the chat template".into()),
                entry,
            );
        }
        if req.session.is_some() && !req.chat {
            return fail(
                JobError::BadRequest("a session is a chat: it needs the chat template".into()),
                entry,
            );
        }
        if let Some(r) = req.session {
            let (session, turn, reused) = match self.start_turn(loaded, &req, r, sampler) {
                Ok(t) => t,
                Err(e) => return fail(e, entry),
            };
            return self.enqueue(
                Queued {
                    session,
                    turn: Some(turn),
                    reused,
                    stops,
                    server_name: name(server_name),
                    prompt_tokens: 0,
                    prev: None,
                },
                req,
                sink,
                loaded,
                entry,
                now,
            );
        }
        // Chat turn markers (ChatML or Gemma's, as the model's file says) go in by token id:
        // text the user typed is only ever text, so an `<|im_end|>` or `<end_of_turn>` inside
        // a prompt cannot close the turn (the same encoding as `llm-run --chat`).
        let tokens = if req.chat {
            let system = Some(req.system.as_str()).filter(|s| !s.is_empty());
            match loaded.tokenizer.encode_chat(system, &req.prompt) {
                Ok(t) => t,
                Err(e) => return fail(JobError::BadRequest(format!("--chat: {e}")), entry),
            }
        } else {
            loaded.tokenizer.encode_prompt(&req.prompt)
        };
        let entry = AuditEntry {
            prompt_len: tokens.len() as u32,
            ..entry
        };
        if tokens.is_empty() {
            return fail(
                JobError::BadRequest("the prompt encodes to no tokens".into()),
                entry,
            );
        }
        let ctx = loaded.model.config.max_seq_len;
        let need = tokens.len() + req.max_tokens as usize;
        if need > ctx {
            return fail(
                JobError::ContextFull(format!(
                    "prompt of {} tokens + {} new tokens does not fit the model's context of {ctx}",
                    tokens.len(),
                    req.max_tokens
                )),
                entry,
            );
        }
        let cfg = SessionConfig {
            context: need,
            max_new_tokens: req.max_tokens as usize,
            sampler,
            stop_tokens: loaded.tokenizer.stop.clone(),
        };
        let mut session = match Session::new(&loaded.model, &POOL, cfg) {
            Ok(s) => s,
            Err(e) => return fail(JobError::Internal(format!("{e}")), entry),
        };
        if let Err(e) = session.feed(&tokens) {
            return fail(JobError::BadRequest(format!("{e}")), entry);
        }
        self.enqueue(
            Queued {
                session,
                turn: None,
                reused: 0,
                stops,
                server_name: name(server_name),
                prompt_tokens: tokens.len() as u32,
                prev: tokens.last().copied(),
            },
            req,
            sink,
            loaded,
            entry,
            now,
        );
    }

    /// Submits an admitted request's job to its server's scheduler and keeps it for the
    /// loop; a refusal (quota, queue) ends a conversation turn without changing it.
    fn enqueue(
        &self,
        q: Queued,
        req: JobRequest,
        sink: &'static dyn ReplySink,
        loaded: &'static Loaded,
        entry: AuditEntry,
        now: u64,
    ) {
        let Queued {
            session,
            turn,
            reused,
            stops,
            server_name,
            mut prompt_tokens,
            mut prev,
        } = q;
        if let Some(t) = &turn {
            prompt_tokens = t.len() as u32;
            prev = t.last();
        }
        let entry = AuditEntry {
            prompt_len: prompt_tokens,
            ..entry
        };
        let fail = |e: JobError, entry: AuditEntry, session, turn: Option<Turn>| {
            if let Some(t) = turn {
                self.refuse_turn(t, session);
            }
            audit::reject(entry);
            sink.failed(req.tag, &e);
        };
        let mut guard = self.state.lock();
        let st = &mut *guard;
        let server_name = server_name.as_str();
        let Some(server) = st.server_mut(server_name).map(|s| s.id) else {
            drop(guard);
            return fail(
                JobError::BadRequest(format!("no server '{server_name}'")),
                entry,
                session,
                turn,
            );
        };
        let submitted = st.sched.submit(
            server,
            JobSpec {
                max_tokens: req.max_tokens,
            },
            now,
        );
        let id = match submitted {
            Ok(id) => id,
            Err(e) => {
                drop(guard);
                return fail(JobError::Rejected(format!("{e}")), entry, session, turn);
            }
        };
        st.jobs.push(Job {
            id,
            server,
            tag: req.tag,
            kind: req.kind,
            sink,
            session,
            loaded,
            prev,
            text: ReplyText::new(stops),
            prompt_tokens,
            max_tokens: req.max_tokens,
            prefill_ns: 0,
            decode_passes: 0,
            decode_ns: 0,
            turn,
            ids: Vec::new(),
            reused: reused as u32,
            admitted_ns: now,
            first_token_ns: 0,
        });
        drop(guard);
        sink.accepted(req.tag, id.0, prompt_tokens);
    }
}

/// A server name as the queue keeps it (names are at most `MAX_NAME` bytes, checked when
/// parsed; the default server's fits).
fn name(s: &str) -> heapless::String<{ super::args::MAX_NAME }> {
    heapless::String::try_from(s).unwrap_or_default()
}

/// An admitted request on its way to the scheduler.
struct Queued {
    session: Session<'static, 'static>,
    turn: Option<Turn>,
    reused: usize,
    stops: StopStrings,
    server_name: heapless::String<{ super::args::MAX_NAME }>,
    prompt_tokens: u32,
    prev: Option<u32>,
}
