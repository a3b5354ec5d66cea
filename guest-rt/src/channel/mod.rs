//! The inter-guest channel endpoint: the shared ring region, doorbells, the audit log.
//!
//! * [`ctl`]: the control guest's end. It initialises the region at boot (a restart of the
//!   control guest re-initialises it: new epoch), sends requests, and drains responses from the
//!   doorbell interrupt (pongs go to `ping`, everything else to an installed
//!   [`ctl::ResponseHandler`]).
//! * [`llm`]: the LLM guest's end. It attaches (retrying on every doorbell until the header is
//!   valid), re-attaches when the epoch changes, drains requests from the doorbell interrupt into
//!   an installed request function, and sends responses with back-pressure (a full ring queues
//!   the response and retries it later).
//! * [`doorbell`]: ringing the peer (`HV_DOORBELL`) and the counters of both directions; a
//!   stopped peer is an error the sender sees, never a hang.
//! * [`audit`]: a typed append over `HV_AUDIT_APPEND` and a reader of the read-only log.
//! * [`commands`]: the `ring` and `audit` shell commands (both guests).
//! * [`outbox`], [`rtt`], [`text`]: back-pressure queue, statistics and output formats (pure,
//!   host tested).
//!
//! Which VM is the peer, which region holds the ring and which interrupt is the doorbell come from
//! the partition table's channel this VM is an end of ([`channel`], [`peer`]); the ring region's
//! guest-physical address from the boot-info block the hypervisor derived from the same table.
//!
//! The doorbell arrives as a virtual SPI (`layout::irq::DOORBELL` for ctl-llm) on the guest's boot core. Each
//! interrupt drains at most one ring's worth of slots, so the work per interrupt is bounded. The
//! boot core's timer tick rings again any doorbell the hypervisor's rate limit refused
//! ([`on_tick`]), so a message published under the limit waits at most one tick. (Draining on
//! every tick would also do, but it would keep the rings from ever filling, and back-pressure is
//! a path the system tests exercise.)
//! Protocol and counters are described in `docs/ring.md`.

pub mod outbox;
pub mod rtt;
pub mod text;

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod audit;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod commands;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod ctl;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod doorbell;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub mod llm;
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod shm;

/// The partition table's channel this VM is an end of (the first one it lists), or `None`
/// (no channel, or no hypervisor told us which VM we are).
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub fn channel() -> Option<&'static sis_platform::partition::Channel> {
    if !crate::hypercall::hypervisor_present() {
        return None;
    }
    sis_platform::SYSTEM.channel_of(crate::boot_info().vm_id as usize)
}

/// The VM at the other end of this VM's [`channel`]: the one it rings and hears from.
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub fn peer() -> Option<sis_platform::partition::VmId> {
    let me = crate::boot_info().vm_id as usize;
    channel().and_then(|c| c.peer(me))
}

/// Timer-tick upkeep (from the timer interrupt, every core; only the boot core, which rings
/// and takes the doorbells, does anything): rings again the doorbells the rate limit refused,
/// so nothing published waits longer than one tick for its doorbell.
#[cfg(all(target_arch = "aarch64", target_os = "none"))]
pub(crate) fn on_tick(core: usize) {
    if core as u64 != crate::boot_info().boot_cpu {
        return;
    }
    doorbell::retry_owed();
}
