//! Background sources (`llmctl run`): a server releases `count` jobs, one every `every_ns`, the
//! first at once, without blocking the shell. Their ends are counted on the server (shown by
//! `llmctl status`), never printed, so the shell's output is never interleaved with background
//! work.

use alloc::format;
use alloc::string::String;

use super::request::{JobError, JobKind, JobRequest, ReplySink, Report};
use super::{now_ns, Service, SERVICE};

/// A background source releasing one job every `every_ns` on a server (tag = server id).
pub(super) struct Periodic {
    pub(super) prompt: heapless::String<{ shared_ring::message::MAX_PROMPT }>,
    pub(super) max_tokens: u32,
    pub(super) every_ns: u64,
    pub(super) total: u32,
    pub(super) released: u32,
    pub(super) next_at_ns: u64,
}

/// Counts background jobs on their server.
struct BgSink;
static BG_SINK: BgSink = BgSink;

impl ReplySink for BgSink {
    fn token(&self, _tag: u64, _id: u32, _text: &str) {}
    fn finished(&self, tag: u64, _r: &Report) {
        SERVICE.count_background_end(tag, true);
    }
    fn failed(&self, tag: u64, _e: &JobError) {
        SERVICE.count_background_end(tag, false);
    }
}

impl Service {
    /// Starts a background source on server `name`: `count` jobs of `max_tokens`, one every
    /// `every_ns`, the first one now.
    ///
    /// # Errors
    /// Bad numbers, no such server, or a source already running there.
    pub fn start_periodic(
        &self,
        name: &str,
        prompt: &str,
        max_tokens: u32,
        every_ns: u64,
        count: u32,
    ) -> Result<(), String> {
        if every_ns == 0 || count == 0 {
            return Err("--every-ns and --count must be at least 1".into());
        }
        let prompt =
            heapless::String::try_from(prompt).map_err(|_| String::from("prompt too long"))?;
        let now = now_ns();
        let mut st = self.state.lock();
        let Some(srv) = st.server_mut(name) else {
            return Err(format!(
                "no server '{name}' (add it with 'llmctl server add')"
            ));
        };
        if srv.periodic.as_ref().is_some_and(|p| p.released < p.total) {
            return Err(format!(
                "server '{name}' already has a background source running"
            ));
        }
        srv.periodic = Some(Periodic {
            prompt,
            max_tokens,
            every_ns,
            total: count,
            released: 0,
            next_at_ns: now,
        });
        srv.bg_done = 0;
        srv.bg_failed = 0;
        Ok(())
    }

    /// Counts a background job's end on the server whose id is `tag`.
    fn count_background_end(&self, tag: u64, ok: bool) {
        let mut st = self.state.lock();
        if let Some(s) = st.servers.iter_mut().find(|s| u64::from(s.id.0) == tag) {
            if ok {
                s.bg_done += 1;
            } else {
                s.bg_failed += 1;
            }
        }
    }

    /// Submits the background jobs that are due at `now`.
    pub(super) fn release_periodic(&self, now: u64) {
        let mut due: heapless::Vec<JobRequest, 8> = heapless::Vec::new();
        {
            let mut st = self.state.lock();
            for s in st.servers.iter_mut() {
                let Some(p) = s.periodic.as_mut() else {
                    continue;
                };
                if p.released < p.total && now >= p.next_at_ns && !due.is_full() {
                    p.released += 1;
                    p.next_at_ns = p.next_at_ns.saturating_add(p.every_ns).max(now);
                    let _ = due.push(JobRequest {
                        tag: u64::from(s.id.0),
                        server: s.name.clone(),
                        prompt: p.prompt.clone(),
                        max_tokens: p.max_tokens,
                        sampling: shared_ring::message::Sampling::DEFAULT,
                        stop: shared_ring::message::StopList::new(),
                        system: heapless::String::new(),
                        session: None,
                        owner: super::session_table::Owner::Shell,
                        cold: false,
                        chat: false,
                        kind: JobKind::Infer,
                    });
                }
            }
        }
        for r in due {
            let tag = r.tag;
            if self.submit(r, &BG_SINK).is_err() {
                BG_SINK.failed(tag, &JobError::Rejected("service inbox full".into()));
            }
        }
    }
}
