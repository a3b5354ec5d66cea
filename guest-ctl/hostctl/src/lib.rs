//! Host control of the control guest, as pure logic: every frame the host sends goes through the
//! decoder, the token check, one audit record and (when allowed) the link to the LLM partition,
//! and gets exactly one reply line, in frame order; the inferences the LLM partition runs for the
//! host are kept in a job table for poll and streaming.
//!
//! The guest kernel (`guest-ctl`) owns one [`HostControl`] and feeds it the bytes of its
//! virtio-console port, the ring responses and the timer tick, with its device, the audit
//! hypercall and the shared ring as the outlets ([`HostOut`], [`AuditOut`], [`RingPort`]).
//! `datactl`'s mock runs the same code behind a socket with a stand-in LLM partition, so the host
//! tool is tested against the guest's real loop. `no_std`, no allocation; the behaviour is
//! described in `docs/control.md`.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

pub mod control;
pub mod host_control;
pub mod jobs;
pub mod latency;
pub mod link;

pub use control::{AuditOut, Control, ControlStats, Forwarded, HostOut, LlmLink, Now, Ticket};
pub use host_control::{HostControl, LlmState};
pub use jobs::{JobStats, Jobs};
pub use link::{Link, LinkStats, RingPort, SendRefused};
