//! Finds this VM's virtio PCI devices and gives their drivers a transport.
//!
//! The hypervisor gives the VM a view of PCI configuration space (bus 0, ECAM layout) at
//! `BootInfo.pci_ecam_base`, in which only the VM's own functions exist; it has assigned their
//! BARs and maps them at their physical addresses. Every configuration access traps, so they
//! are 32-bit and aligned ([`ViewCam`]). Devices are found by type; a function's INTx INTID
//! comes from the partition table (the slot's INTA), like the functions themselves.
//!
//! The devices sit behind the SMMU and use it only if the driver accepts
//! `VIRTIO_F_ACCESS_PLATFORM` (QEMU's `iommu_platform=on` refuses `FEATURES_OK` otherwise), so
//! every transport is wrapped in [`Platform`], which accepts it: device addresses are then
//! this VM's guest-physical addresses, translated by the SMMU into its RAM and nowhere else.

use sis_platform::partition::PARTITIONS;
use sis_platform::BootInfo;
use virtio_drivers::transport::pci::bus::{Command, ConfigurationAccess, DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::{virtio_device_type, PciTransport};
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{PhysAddr, Result};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::dma::CtlHal;

/// `VIRTIO_F_VERSION_1`: a modern device (the only kind `disable-legacy=on` offers).
const F_VERSION_1: u64 = 1 << 32;
/// `VIRTIO_F_ACCESS_PLATFORM`: the device's DMA goes through the platform's IOMMU.
const F_ACCESS_PLATFORM: u64 = 1 << 33;

/// The configuration view: one 32-bit register per trapped access.
pub struct ViewCam {
    base: u64,
    size: u64,
}

impl ViewCam {
    fn reg(&self, df: DeviceFunction, offset: u8) -> Option<*mut u32> {
        let off = u64::from(df.bus) << 20
            | u64::from(df.device) << 15
            | u64::from(df.function) << 12
            | u64::from(offset & 0xFC);
        (off < self.size).then_some((self.base + off) as *mut u32)
    }
}

impl ConfigurationAccess for ViewCam {
    fn read_word(&self, df: DeviceFunction, offset: u8) -> u32 {
        match self.reg(df, offset) {
            // SAFETY: the boot info names the configuration view the hypervisor traps for this
            // VM (mapped as device memory at stage 1); the address is inside it and aligned.
            Some(p) => unsafe { p.read_volatile() },
            None => u32::MAX,
        }
    }

    fn write_word(&mut self, df: DeviceFunction, offset: u8, data: u32) {
        if let Some(p) = self.reg(df, offset) {
            // SAFETY: as for `read_word`.
            unsafe { p.write_volatile(data) }
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        ViewCam {
            base: self.base,
            size: self.size,
        }
    }
}

/// A transport whose driver accepts the platform features the devices need
/// (`VERSION_1`, `ACCESS_PLATFORM`) on top of its own.
pub struct Platform<T: Transport>(pub T);

impl<T: Transport> Transport for Platform<T> {
    fn device_type(&self) -> DeviceType {
        self.0.device_type()
    }

    fn read_device_features(&mut self) -> u64 {
        self.0.read_device_features()
    }

    fn write_driver_features(&mut self, driver_features: u64) {
        let offered = self.0.read_device_features();
        let platform = offered & (F_VERSION_1 | F_ACCESS_PLATFORM);
        self.0.write_driver_features(driver_features | platform);
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.0.max_queue_size(queue)
    }

    fn notify(&mut self, queue: u16) {
        self.0.notify(queue)
    }

    fn get_status(&self) -> DeviceStatus {
        self.0.get_status()
    }

    fn set_status(&mut self, status: DeviceStatus) {
        self.0.set_status(status)
    }

    fn set_guest_page_size(&mut self, guest_page_size: u32) {
        self.0.set_guest_page_size(guest_page_size)
    }

    fn requires_legacy_layout(&self) -> bool {
        self.0.requires_legacy_layout()
    }

    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver_area: PhysAddr,
        device_area: PhysAddr,
    ) {
        self.0
            .queue_set(queue, size, descriptors, driver_area, device_area)
    }

    fn queue_unset(&mut self, queue: u16) {
        self.0.queue_unset(queue)
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        self.0.queue_used(queue)
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        self.0.ack_interrupt()
    }

    fn read_config_generation(&self) -> u32 {
        self.0.read_config_generation()
    }

    fn read_config_space<V: FromBytes + IntoBytes>(&self, offset: usize) -> Result<V> {
        self.0.read_config_space(offset)
    }

    fn write_config_space<V: IntoBytes + Immutable>(
        &mut self,
        offset: usize,
        value: V,
    ) -> Result<()> {
        self.0.write_config_space(offset, value)
    }
}

/// The transport guest-ctl's drivers use.
pub type CtlTransport = Platform<PciTransport>;

/// A device found in this VM's configuration view.
pub struct Found {
    /// The transport, ready for a driver.
    pub transport: CtlTransport,
    /// Its device type.
    pub kind: DeviceType,
    /// The INTID its INTx raises.
    pub intid: u32,
    /// Where it is (`bus:device.function`).
    pub function: DeviceFunction,
}

/// Calls `f` for every virtio device in this VM's configuration view (none when it has no
/// view, e.g. without the hypervisor).
pub fn probe(info: &BootInfo, mut f: impl FnMut(Found)) {
    let Some(vm) = PARTITIONS.get(info.vm_id as usize) else {
        return;
    };
    if info.pci_ecam_base == 0 || info.pci_ecam_size == 0 {
        return;
    }
    let mut root = PciRoot::new(ViewCam {
        base: info.pci_ecam_base,
        size: info.pci_ecam_size,
    });
    let found: heapless::Vec<_, 8> = root.enumerate_bus(0).take(8).collect();
    for (df, dfi) in found {
        let Some(kind) = virtio_device_type(&dfi) else {
            continue;
        };
        let Some(intid) = vm
            .pci
            .iter()
            .find(|p| p.bus == df.bus && p.device == df.device && p.function == df.function)
            .map(|p| p.intx)
        else {
            continue;
        };
        // Decode its BAR and let it master (the hypervisor confines its DMA).
        root.set_command(df, Command::MEMORY_SPACE | Command::BUS_MASTER);
        match PciTransport::new::<CtlHal, _>(&mut root, df) {
            Ok(t) => f(Found {
                transport: Platform(t),
                kind,
                intid,
                function: df,
            }),
            Err(e) => guest_rt::println!("virtio: {df}: {e}"),
        }
    }
}
