//! The VMs' PCI devices through their lifecycle: set up at boot (enumeration, SMMU), switched
//! off when their VM stops (no DMA, no interrupts: a stopped VM neither writes memory nor
//! storms a core) and on again when it starts, and DMA faults, which stop the offending VM.

use core::sync::atomic::Ordering;

use shared_ring::audit::{Op, STATUS_REJECT};
use sis_platform::partition::{VmId, PARTITIONS};

use super::vm::{self, Vm, VMS};
use super::{gic, pci, smmu};
use crate::hvprintln;
use hypervisor::smmu::event::{Event, Rid};

/// Boot (core 0, before stage-2 tables are built and before any VM starts): enumerates the
/// bus and programs the SMMU. Without a working SMMU no device ever gets bus mastering; if the
/// device tree does not show the PCIe host and SMMU where the platform constants put them,
/// neither is touched.
pub fn init(where_expected: bool) {
    if PARTITIONS.iter().all(|vm| vm.pci.is_empty()) {
        return;
    }
    if !where_expected {
        hvprintln!("pci: the device tree disagrees with the platform: PCI devices stay off");
        return;
    }
    pci::init();
    let mut owned = [(0u32, 0 as VmId); hypervisor::pci::enumerate::MAX_FUNCTIONS];
    let n = pci::owned(&mut owned);
    match smmu::init(&owned[..n]) {
        Ok(()) => hvprintln!("smmu: enabled, {n} streams assigned, every other stream refused"),
        Err(e) => hvprintln!("smmu: {e}: PCI devices stay off (no DMA without the SMMU)"),
    }
}

/// Switches off `vm`'s devices: their streams abort, their functions stop mastering and
/// decoding (virtio reset), their interrupt lines are disabled and cleared at the GIC.
pub fn stop(vm: &Vm) {
    if vm.cfg.pci.is_empty() {
        return;
    }
    let (sids, n) = pci::streams(vm.id);
    if let Err(e) = smmu::detach(&sids[..n]) {
        hvprintln!("smmu: vm {}: streams not detached: {e}", vm.cfg.name);
    }
    pci::stop_devices(vm.id);
    for &spi in vm.cfg.irqs {
        gic::quiet_spi(spi);
    }
}

/// Switches `vm`'s devices on for a fresh start: reset, decoding and DMA on (translated by the
/// SMMU into the VM's RAM only), interrupt lines enabled.
pub fn start(vm: &Vm) {
    for &spi in vm.cfg.irqs {
        gic::quiet_spi(spi);
    }
    if !vm.cfg.pci.is_empty() {
        if smmu::ready() {
            let (sids, n) = pci::streams(vm.id);
            match smmu::attach(vm.id, &sids[..n]) {
                Ok(()) => pci::start_devices(vm.id),
                Err(e) => hvprintln!("smmu: vm {}: devices stay off: {e}", vm.cfg.name),
            }
        } else {
            hvprintln!("vm {}: devices stay off (no SMMU)", vm.cfg.name);
        }
    }
    for &spi in vm.cfg.irqs {
        gic::enable_spi(spi);
    }
}

/// The SMMU's event or error interrupt (on the work core).
pub fn smmu_irq(intid: u32) {
    smmu::handle_irq(intid, dma_faults);
}

/// A batch of fault events. Every event is counted. The first one of a running VM stops it and
/// is reported and audited; later ones while it is stopped (a device retrying the transfer,
/// in QEMU once per 4 bytes) are summed into one line per batch. Faults of streams no VM owns
/// are reported once per batch as well.
fn dma_faults(events: &[Event]) {
    let mut quiet = [0u64; PARTITIONS.len()];
    let mut unassigned: Option<(Event, u64)> = None;
    for e in events {
        let Some(id) = pci::owner(e.sid) else {
            smmu::COUNTERS.unassigned.fetch_add(1, Ordering::Relaxed);
            match unassigned.as_mut() {
                Some((_, n)) => *n += 1,
                None => unassigned = Some((*e, 0)),
            }
            continue;
        };
        let v = &VMS[id];
        v.stats.dma_faults.fetch_add(1, Ordering::Relaxed);
        if !(v.running() && vm::stop(v).is_ok()) {
            quiet[id] += 1;
            continue;
        }
        super::audit::event(id, Op::DmaFault, STATUS_REJECT, e.addr.unwrap_or(0));
        hvprintln!(
            "vm {} stopped: DMA fault by {} (stream {:#x}): {e}",
            v.cfg.name,
            Rid(e.sid),
            e.sid
        );
    }
    for (id, n) in quiet.iter().enumerate().filter(|(_, n)| **n > 0) {
        hvprintln!(
            "vm {}: {n} more DMA faults while stopped (counted in vms)",
            PARTITIONS[id].name
        );
    }
    if let Some((e, more)) = unassigned {
        hvprintln!(
            "smmu: DMA by unassigned stream {:#x} ({}) refused: {e} ({more} more)",
            e.sid,
            Rid(e.sid)
        );
    }
}
