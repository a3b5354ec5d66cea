//! [`HostControl`]: the one owner of host-control state (the frame loop with its reply FIFO and
//! the link with its job table), and what the guest's interrupt handlers and timer tick call.

use shared_ring::Response;
use sis_frame::auth::Authenticator;

use crate::control::{AuditOut, Control, HostOut, Now};
use crate::link::{Forwarder, Link, LinkStats, RingPort};
use crate::JobStats;

/// Abandoned jobs are looked for this often.
pub const EXPIRE_EVERY_MS: u64 = 1000;

/// The LLM VM as the hypervisor reports it (`HV_VM_STATE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LlmState {
    /// Running; `generation` counts its starts.
    Running {
        /// Starts of the VM since boot.
        generation: u64,
    },
    /// Stopped.
    Stopped,
    /// Not known (no hypervisor).
    Unknown,
}

/// Host control: frames in, replies out, requests to and responses from the LLM partition.
pub struct HostControl {
    control: Control,
    link: Link,
    /// Generation of the LLM VM when last seen running (0: not yet seen).
    llm_generation: u64,
    /// When abandoned jobs were last looked for.
    expired_ms: u64,
}

impl HostControl {
    /// No secrets yet (every frame is refused `ERR 0x05` until [`HostControl::set_auth`]);
    /// `clock_us` (monotonic microseconds) stamps replies as they leave, for the latency.
    pub const fn new(clock_us: fn() -> u64) -> Self {
        HostControl {
            control: Control::new(None, clock_us),
            link: Link::new(),
            llm_generation: 0,
            expired_ms: 0,
        }
    }

    /// Installs the authenticator (secrets drawn at boot).
    pub fn set_auth(&mut self, auth: Authenticator) {
        self.control.set_auth(auth);
    }

    /// The authenticator (for the token shell commands).
    pub fn auth_mut(&mut self) -> Option<&mut Authenticator> {
        self.control.auth_mut()
    }

    /// The frame loop (counters, latency, authenticator).
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// Counters of the link and the job table, and the jobs running.
    pub fn link_stats(&self) -> (LinkStats, JobStats, usize) {
        self.link.stats()
    }

    /// The host connection changed: a partial frame of the old connection is dropped.
    pub fn host_changed(&mut self) {
        self.control.host_changed();
    }

    /// Bytes from the host: every frame they complete is answered, forwarded over `ring`, or
    /// queued behind earlier ones.
    pub fn on_bytes(
        &mut self,
        bytes: &[u8],
        now: Now,
        host: &mut dyn HostOut,
        audit: &mut dyn AuditOut,
        ring: &mut dyn RingPort,
    ) {
        let mut llm = Forwarder {
            link: &mut self.link,
            port: ring,
        };
        self.control.on_bytes(bytes, now, host, audit, &mut llm);
    }

    /// A response from the LLM partition.
    pub fn on_response(&mut self, msg: Response, now: Now, host: &mut dyn HostOut) {
        self.link.on_response(msg, now.ms, &mut self.control, host);
    }

    /// Periodic upkeep (the timer tick): frames waiting for the LLM partition get `ERR 0x06` at
    /// their deadline, or at once when it stopped or restarted (a new generation lost the old
    /// one's requests), and then its running jobs end `fail` with code `0x06` at once; once a
    /// second, jobs it abandoned silently are ended. `llm` is checked on every
    /// call, so a restart is noticed even while nothing waits.
    pub fn tick(&mut self, now: Now, llm: LlmState, host: &mut dyn HostOut) {
        let gone = match llm {
            LlmState::Running { generation } => {
                let seen = core::mem::replace(&mut self.llm_generation, generation);
                seen != 0 && seen != generation
            }
            LlmState::Stopped => true,
            LlmState::Unknown => false,
        };
        if self.control.pending() > 0 {
            self.control.tick(now, gone, host);
        }
        if gone {
            // Its jobs are lost with it: say so now rather than after JOB_IDLE_MS of silence.
            self.link.fail_running(&mut self.control, host);
        }
        if now.ms.saturating_sub(self.expired_ms) >= EXPIRE_EVERY_MS {
            self.expired_ms = now.ms;
            self.link.expire(now.ms, &mut self.control, host);
        }
    }
}

#[cfg(test)]
mod tests;
