//! The virtio-rng device: the only source of the control plane's secrets.
//!
//! Requests are synchronous (a few hundred bytes at boot and on rotation); the device's
//! interrupt is left disabled and its status acknowledged after each request.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use guest_rt::sync::IrqMutex;
use virtio_drivers::device::rng::VirtIORng;
use virtio_drivers::transport::pci::bus::DeviceFunction;
use virtio_drivers::transport::Transport;

use crate::dma::CtlHal;
use crate::virtio::CtlTransport;

type Device = VirtIORng<CtlHal, CtlTransport>;

static RNG: IrqMutex<Option<Device>> = IrqMutex::new(None);
/// Bytes drawn from the device since boot.
static DRAWN: AtomicU64 = AtomicU64::new(0);
/// Requests that failed.
static ERRORS: AtomicU64 = AtomicU64::new(0);

/// Why no random bytes could be drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RngError {
    /// No virtio-rng device was found at boot.
    NoDevice,
    /// The device failed a request or returned nothing.
    Device,
}

impl fmt::Display for RngError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RngError::NoDevice => "no virtio-rng device",
            RngError::Device => "virtio-rng request failed",
        })
    }
}

/// Starts the driver on `transport`; prints the outcome.
pub fn init(transport: CtlTransport, at: DeviceFunction) {
    if transport.device_type() != virtio_drivers::transport::DeviceType::EntropySource {
        return;
    }
    match VirtIORng::<CtlHal, _>::new(transport) {
        Ok(mut dev) => {
            dev.disable_interrupts();
            *RNG.lock() = Some(dev);
            guest_rt::println!("RNG: virtio-rng at {at}");
        }
        Err(e) => guest_rt::println!("RNG: virtio-rng at {at} failed to start: {e}"),
    }
}

/// Whether a device is available.
pub fn present() -> bool {
    RNG.lock().is_some()
}

/// Fills `out` with bytes from the device.
pub fn fill(out: &mut [u8]) -> Result<(), RngError> {
    let mut guard = RNG.lock();
    let dev = guard.as_mut().ok_or(RngError::NoDevice)?;
    let mut done = 0;
    let mut empty = 0;
    while done < out.len() {
        let r = dev.request_entropy(&mut out[done..]);
        dev.ack_interrupt();
        match r {
            Ok(0) => {
                empty += 1;
                if empty > 16 {
                    ERRORS.fetch_add(1, Ordering::Relaxed);
                    return Err(RngError::Device);
                }
            }
            Ok(n) => done += n.min(out.len() - done),
            Err(_) => {
                ERRORS.fetch_add(1, Ordering::Relaxed);
                return Err(RngError::Device);
            }
        }
    }
    DRAWN.fetch_add(out.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// One random 64-bit value.
pub fn u64() -> Result<u64, RngError> {
    let mut b = [0u8; 8];
    fill(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// (bytes drawn, failed requests).
pub fn stats() -> (u64, u64) {
    (
        DRAWN.load(Ordering::Relaxed),
        ERRORS.load(Ordering::Relaxed),
    )
}
