//! SIS control-plane wire format and authorization, shared by the control guest and the
//! host tool `datactl` so there is exactly one definition of the protocol.
//!
//! - [`codec`]: frames (v0 from the original system, v1 extension), the encoder used by the
//!   host and the streaming decoder used by the guest.
//! - [`reply`]: reply lines (`OK`, `ERR 0xNN`, poll, streaming), formatted into fixed buffers
//!   by the guest and parsed by the host.
//! - [`auth`]: tokens, rights, constant-time checks, rate limiting and rotation.
//!
//! `no_std`, no allocation. The byte-exact specification is `docs/frames.md`.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod codec;
pub mod reply;
