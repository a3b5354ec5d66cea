//! Shared-memory channel between the SIS guests, and the hypervisor's audit log format.
//!
//! * [`region`]: the 1 MiB shared region — a header and two single-producer/single-consumer
//!   rings (control → LLM [`Request`]s, LLM → control [`Response`]s). The control guest calls
//!   [`region::init`], the LLM guest [`region::attach`].
//! * [`ring`]: the rings themselves — fixed-size slots, each stamped with its sequence number,
//!   holding one postcard-encoded message. The consumer validates every index, length, sequence
//!   number and decode; a bad slot is counted and skipped, never trusted.
//! * [`message`]: the message types, every field bounded.
//! * [`audit`]: the append-only audit log the hypervisor writes and guests read.
//! * [`hostile`]: a producer that writes garbage on purpose (fault-injection diagnostics).
//! * [`mem`]: the only door to shared memory ([`RawRegion`], atomic word accesses).
//!
//! Layout, validation rules and measurements are in `docs/ring.md`.
#![no_std]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(loom)]
extern crate std;

pub mod audit;
pub mod counters;
#[cfg(feature = "alloc")]
pub mod heap;
pub mod hostile;
pub mod mem;
pub mod message;
pub mod region;
pub mod ring;
mod slot_writer;

pub use counters::{ConsumerStats, ProducerStats, RejectCounts, RejectReason};
#[cfg(feature = "alloc")]
pub use heap::HeapRegion;
pub use mem::{Mem, RawRegion};
pub use message::{InferRequest, Request, Response};
pub use region::{attach, init, CtlEnd, Geometry, LlmEnd, RegionError, RingGeometry};
pub use ring::{Consumer, Producer, Received, Rejected, SendError};
