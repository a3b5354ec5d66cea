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
//!
//! The guest's loop, end to end (the host side is `codec::encode` and `reply::parse_reply`):
//!
//! ```
//! use sis_frame::auth::{Authenticator, RateLimitConfig, Secrets};
//! use sis_frame::codec::{encode, Command, Decoder, Event, Request, Version, MAX_FRAME_LEN};
//! use sis_frame::reply::{parse_reply, write_err, write_ok, write_refusal, write_rejected};
//! use sis_frame::reply::{ErrorCode, Field, Reply};
//!
//! // Secrets come from virtio-rng in the guest.
//! let secrets = Secrets { admin: 0xa11ce, submit: 0x5ab, ctl_key: 0x00c0_ffee };
//! let mut auth = Authenticator::new(secrets, RateLimitConfig::DEFAULT).unwrap();
//! let mut dec = Decoder::new();
//!
//! // Host: one good frame, some noise, one frame with a bad token.
//! let mut wire = Vec::new();
//! let mut buf = [0u8; MAX_FRAME_LEN];
//! for token in [0x5ab, 0xbad] {
//!     let req = Request { version: Version::V0, token, seq: 0,
//!                         command: Command::LlmCancel { infer_id: 7 } };
//!     let n = encode(&req, &mut buf).unwrap();
//!     wire.extend_from_slice(&buf[..n]);
//!     wire.extend_from_slice(b"noise");
//! }
//!
//! // Guest: answer every delimited frame exactly once, in order.
//! let (mut input, mut replies, now_ms) = (&wire[..], Vec::new(), 0);
//! while !input.is_empty() {
//!     let (used, ev) = dec.feed(input);
//!     input = &input[used..];
//!     let mut out = [0u8; 256];
//!     let n = match ev {
//!         None => continue,
//!         Some(Event::Rejected(r)) => write_rejected(&mut out, &r).unwrap(),
//!         Some(Event::Request(req)) => {
//!             let decision = auth.check(req.token, req.command.requirement(), now_ms);
//!             match write_refusal(&mut out, &decision).unwrap() {
//!                 Some(n) => n,
//!                 // Allowed: forward to the LLM guest over the ring; here, pretend.
//!                 None => write_ok(&mut out, &[Field::num("id", 7)]).unwrap(),
//!             }
//!         }
//!     };
//!     replies.push(out[..n].to_vec());
//! }
//! assert_eq!(replies, [b"OK id=7\n".to_vec(), b"ERR 0x05\n".to_vec()]);
//! assert_eq!(dec.stats().garbage_bytes, 10);
//! assert!(matches!(parse_reply(&replies[1]), Ok(Reply::Err { code: 0x05, .. })));
//! # let _ = (write_err, ErrorCode::NotFound);
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod codec;
pub mod reply;
