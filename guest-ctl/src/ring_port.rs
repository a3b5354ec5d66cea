//! The request direction of the shared ring for host control: rings the LLM VM's doorbell, then
//! publishes on the ctl->llm ring.

use guest_rt::channel::ctl::{self, SendFail};
use guest_rt::channel::doorbell::{self, DoorbellError};
use shared_ring::{Request, SendError};
use sis_hostctl::{RingPort, SendRefused};

/// The shared ring to the LLM partition.
pub struct SharedRing;

impl RingPort for SharedRing {
    fn send(&mut self, req: &Request) -> Result<u64, SendRefused> {
        // Ask the hypervisor first whether the LLM VM runs (a doorbell to a stopped VM is
        // refused; an extra one to a running VM only makes it look at its ring): a request
        // published while it is stopped would run after it comes back although the host was
        // told it failed.
        if let Err(DoorbellError::PeerStopped) = doorbell::ring_peer() {
            return Err(SendRefused::Unreachable);
        }
        match ctl::send(req) {
            Ok(seq) => Ok(seq),
            Err(SendFail::Ring(SendError::Full)) => Err(SendRefused::RingFull),
            Err(SendFail::Ring(_)) => Err(SendRefused::Internal),
            Err(SendFail::NotStarted | SendFail::NotDelivered { .. }) => {
                Err(SendRefused::Unreachable)
            }
        }
    }

    fn entropy(&mut self) -> Option<u64> {
        crate::rng::u64().ok()
    }
}
