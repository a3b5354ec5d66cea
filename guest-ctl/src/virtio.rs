//! Finds the virtio-mmio transports passed through to this VM.
//!
//! The partition table names the device pages and SPIs this VM owns; each 4 KiB page holds
//! eight 0x200-byte transports, transport `n` (counted from `VIRTIO_MMIO_BASE`) raising SPI
//! `VIRTIO_MMIO_BASE_IRQ + n`. Empty transports (device id 0) are skipped, so which slot QEMU
//! gave a device does not matter: devices are found by type.

use core::ptr::NonNull;

use sis_platform::layout::{irq, phys};
use sis_platform::partition::PARTITIONS;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};

/// A transport found on one of this VM's device pages.
pub struct Found {
    /// The transport, ready for a driver.
    pub transport: MmioTransport<'static>,
    /// Its device type.
    pub kind: DeviceType,
    /// The SPI it raises.
    pub intid: u32,
    /// Its guest-physical address.
    pub addr: u64,
}

/// Calls `f` for every device on this VM's pass-through virtio pages whose SPI it owns.
pub fn probe(vm_id: usize, mut f: impl FnMut(Found)) {
    let Some(vm) = PARTITIONS.get(vm_id) else {
        return;
    };
    let slots_per_page = (sis_platform::layout::PAGE_SIZE / phys::VIRTIO_MMIO_STRIDE) as usize;
    for page in vm.devices {
        for k in 0..slots_per_page {
            let addr = page.ipa + k as u64 * phys::VIRTIO_MMIO_STRIDE;
            let Some(slot) = addr
                .checked_sub(phys::VIRTIO_MMIO_BASE)
                .map(|o| o / phys::VIRTIO_MMIO_STRIDE)
                .filter(|&s| s < phys::VIRTIO_MMIO_COUNT)
            else {
                continue;
            };
            let intid = irq::VIRTIO_MMIO_BASE_IRQ + slot as u32;
            if !vm.irqs.contains(&intid) {
                continue;
            }
            let Some(header) = NonNull::new(addr as *mut VirtIOHeader) else {
                continue;
            };
            // SAFETY: `addr` is a transport inside a device page the partition table gives
            // this VM (mapped as device memory at stage 1 and stage 2); each transport is
            // probed once, and the `MmioTransport` handed out is its only user.
            let transport =
                unsafe { MmioTransport::new(header, phys::VIRTIO_MMIO_STRIDE as usize) };
            // Empty slots have device id 0, which the transport refuses: nothing there.
            if let Ok(transport) = transport {
                let kind = transport.device_type();
                f(Found {
                    transport,
                    kind,
                    intid,
                    addr,
                });
            }
        }
    }
}
