//! Ringing the peer's doorbell and counting doorbells in both directions.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use sis_platform::hypercall::{RATE_LIMITED, TARGET_STOPPED};
use sis_platform::partition::VmId;

use super::text::DoorbellStats;
use crate::hypercall::{self, HvError};

static TX: AtomicU64 = AtomicU64::new(0);
static RX: AtomicU64 = AtomicU64::new(0);
static PEER_STOPPED: AtomicU64 = AtomicU64::new(0);
static LIMITED: AtomicU64 = AtomicU64::new(0);
/// Bit `n` set: a doorbell to VM `n` was refused by the rate limit and is rung again at the
/// next timer tick ([`retry_owed`]).
static OWED: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicU64 = AtomicU64::new(0);

/// Why a doorbell was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DoorbellError {
    /// The peer VM is stopped: nothing was raised (the message stays in the ring; a restarted
    /// control guest re-initialises the region, a restarted LLM guest reads it on attach).
    PeerStopped,
    /// The hypercall failed (no hypervisor, bad VM id).
    Hv(HvError),
    /// This VM has no channel to another VM in the partition table (or runs without the
    /// hypervisor), so it has no peer to ring.
    NoPeer,
}

impl fmt::Display for DoorbellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DoorbellError::PeerStopped => f.write_str("peer VM is stopped"),
            DoorbellError::Hv(e) => write!(f, "doorbell failed: {e}"),
            DoorbellError::NoPeer => f.write_str("no channel to a peer VM"),
        }
    }
}

/// Raises the doorbell interrupt in VM `peer`. Counted either way.
///
/// A doorbell the hypervisor's rate limit refuses is counted (`rate_limited`) and is not an
/// error: whatever was published stays in the ring, and the doorbell is owed: it is rung again
/// at the boot core's next timer tick ([`retry_owed`]), so nothing is lost, only delayed.
pub fn ring(peer: VmId) -> Result<(), DoorbellError> {
    match hypercall::doorbell(peer as u64) {
        Ok(()) => {
            TX.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(HvError::Other(s)) if s == RATE_LIMITED => {
            LIMITED.fetch_add(1, Ordering::Relaxed);
            if peer < 64 {
                OWED.fetch_or(1 << peer, Ordering::AcqRel);
            }
            Ok(())
        }
        Err(HvError::Other(s)) if s == TARGET_STOPPED => {
            PEER_STOPPED.fetch_add(1, Ordering::Relaxed);
            Err(DoorbellError::PeerStopped)
        }
        Err(e) => {
            FAILED.fetch_add(1, Ordering::Relaxed);
            Err(DoorbellError::Hv(e))
        }
    }
}

/// Rings the doorbell of this VM's channel peer ([`super::peer`]), as [`ring`] does.
pub fn ring_peer() -> Result<(), DoorbellError> {
    match super::peer() {
        Some(peer) => ring(peer),
        None => {
            FAILED.fetch_add(1, Ordering::Relaxed);
            Err(DoorbellError::NoPeer)
        }
    }
}

/// Rings every doorbell the rate limit refused since the last call (a refusal owes it again).
pub(crate) fn retry_owed() {
    let mut owed = OWED.swap(0, Ordering::AcqRel);
    while owed != 0 {
        let peer = owed.trailing_zeros() as VmId;
        owed &= owed - 1;
        let _ = ring(peer);
    }
}

/// Counts one doorbell interrupt taken.
pub(crate) fn count_rx() {
    RX.fetch_add(1, Ordering::Relaxed);
}

/// Doorbell counters since boot.
pub fn stats() -> DoorbellStats {
    DoorbellStats {
        tx: TX.load(Ordering::Relaxed),
        rx: RX.load(Ordering::Relaxed),
        peer_stopped: PEER_STOPPED.load(Ordering::Relaxed),
        rate_limited: LIMITED.load(Ordering::Relaxed),
        failed: FAILED.load(Ordering::Relaxed),
    }
}
