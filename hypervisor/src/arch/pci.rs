//! PCI configuration space at the hardware edge: the machine's ECAM, the enumerated root bus,
//! the trapped configuration view of each VM, and the register writes that switch an assigned
//! function off (VM stop) and on again (VM start). The logic is `hypervisor::pci`.

use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::registers::{CNTFRQ_EL0, CNTPCT_EL0};
use sis_platform::layout::{ipa, phys};
use sis_platform::partition::{VmId, PARTITIONS};
use tock_registers::interfaces::Readable;

use crate::hvprintln;
use hypervisor::pci::enumerate::{BarWindow, Bus, Function};
use hypervisor::pci::{command, ecam_offset, reg, ConfigAccess};
use hypervisor::smmu::event::Rid;

/// The machine's ECAM (bus 0).
struct Ecam;

impl Ecam {
    fn addr(rid: u32, offset: u16) -> *mut u32 {
        (phys::PCIE_ECAM_BASE + ecam_offset(rid) + u64::from(offset & 0xFFC)) as *mut u32
    }
}

impl ConfigAccess for Ecam {
    fn read(&mut self, rid: u32, offset: u16) -> u32 {
        // SAFETY: the ECAM window (checked against the DTB at boot) is identity-mapped device
        // memory for the hypervisor; `rid` is below 256 and `offset` an aligned register of
        // its 4 KiB, so the address is inside bus 0 of the window.
        unsafe { Ecam::addr(rid & 0xFF, offset).read_volatile() }
    }

    fn write(&mut self, rid: u32, offset: u16, value: u32) {
        // SAFETY: as for `read`.
        unsafe { Ecam::addr(rid & 0xFF, offset).write_volatile(value) }
    }
}

/// The root bus: empty (every view reads as absent) until enumeration, and for good if the
/// hypervisor keeps PCI off.
static BUS: spin::Mutex<Bus> = spin::Mutex::new(Bus::empty());

/// Configuration writes refused per VM (the monitor's `vms`).
pub static REFUSED: [AtomicU64; PARTITIONS.len()] = [const { AtomicU64::new(0) }; PARTITIONS.len()];

/// Most functions a VM may own (stream lists are fixed arrays).
pub const MAX_OWNED: usize = 8;

/// Enumerates bus 0 and assigns the BARs of the functions VMs own (core 0, at boot); prints
/// what it found.
pub fn init() {
    let mut window = BarWindow::new(phys::PCIE_BAR_BASE, phys::PCIE_BAR_SIZE);
    let bus = Bus::enumerate(&mut Ecam, &PARTITIONS, &mut window);
    for f in bus.functions() {
        let owner = f.owner.map_or("-", |vm| PARTITIONS[vm].name);
        hvprintln!(
            "pci {}: {:04x}:{:04x} class {:06x} -> {owner}",
            Rid(f.rid),
            f.vendor,
            f.device_id,
            f.class
        );
        for (i, b) in f.bars.iter().enumerate() {
            if let Some(b) = b {
                hvprintln!(
                    "pci {}: BAR{i} {:#x} ({} KiB, {:?})",
                    Rid(f.rid),
                    b.addr,
                    b.size >> 10,
                    b.kind
                );
            }
        }
    }
    for p in bus.problems() {
        hvprintln!("pci: {p}");
    }
    *BUS.lock() = bus;
}

/// The stream IDs (requester IDs) of the functions `vm` owns.
pub fn streams(vm: VmId) -> ([u32; MAX_OWNED], usize) {
    let mut out = [0; MAX_OWNED];
    let mut n = 0;
    for f in BUS.lock().owned_by(vm).take(MAX_OWNED) {
        out[n] = f.rid;
        n += 1;
    }
    (out, n)
}

/// Every (stream ID, owner) pair.
pub fn owned(out: &mut [(u32, VmId)]) -> usize {
    let mut n = 0;
    for f in BUS.lock().functions() {
        if let (Some(vm), Some(slot)) = (f.owner, out.get_mut(n)) {
            *slot = (f.rid, vm);
            n += 1;
        }
    }
    n
}

/// The VM that owns stream (requester) `rid`.
pub fn owner(rid: u32) -> Option<VmId> {
    BUS.lock().get(rid)?.owner
}

/// Calls `f(addr, size)` for every BAR of every function `vm` owns (its stage-2 maps them).
pub fn for_each_bar(vm: VmId, mut f: impl FnMut(u64, u64)) {
    for func in BUS.lock().owned_by(vm) {
        for b in func.bars.iter().flatten() {
            f(b.addr, b.size.max(hypervisor::pci::enumerate::BAR_ALIGN));
        }
    }
}

/// A trapped access by `vm` at `addr` (guest-physical): `None` if `addr` is not in the VM's
/// configuration view; otherwise the value read (0 for a write), or `Err` for an access the
/// view does not allow (reported here; the caller stops the VM).
pub fn trapped(vm: VmId, addr: u64, size: u64, write: Option<u64>) -> Option<Result<u64, ()>> {
    if PARTITIONS[vm].pci.is_empty()
        || !(ipa::PCI_ECAM_BASE..ipa::PCI_ECAM_BASE + ipa::PCI_ECAM_SIZE).contains(&addr)
    {
        return None;
    }
    let offset = addr - ipa::PCI_ECAM_BASE;
    let result = BUS.lock().view_access(vm, &mut Ecam, offset, size, write);
    Some(match result {
        Ok(done) => {
            if done.refused {
                REFUSED[vm].fetch_add(1, Ordering::Relaxed);
            }
            Ok(done.value)
        }
        Err(e) => {
            hvprintln!(
                "vm {}: PCI configuration access refused: {e} at {}+{:#x}",
                PARTITIONS[vm].name,
                Rid((offset >> 12) as u32),
                offset & 0xFFF
            );
            Err(())
        }
    })
}

/// Offset of `device_status` in the virtio common configuration.
const VIRTIO_DEVICE_STATUS: u64 = 0x14;

/// Resets a virtio device through its BAR (device_status = 0) and waits (bounded) until it
/// reads back 0; then reads the ISR, which deasserts its INTx.
fn virtio_reset(f: &Function) -> bool {
    let Some(v) = f.virtio else {
        return true;
    };
    let status = (v.common + VIRTIO_DEVICE_STATUS) as *mut u8;
    // SAFETY: `common` lies inside a BAR the hypervisor assigned to this function (checked
    // against the BAR's size during enumeration), identity-mapped device memory; memory decode
    // is on (the caller's command write).
    unsafe { status.write_volatile(0) };
    let end = CNTPCT_EL0.get() + CNTFRQ_EL0.get() / 100;
    // SAFETY: as above.
    while unsafe { status.read_volatile() } != 0 {
        if CNTPCT_EL0.get() > end {
            return false;
        }
        core::hint::spin_loop();
    }
    // SAFETY: the ISR byte is inside the same BAR (checked likewise).
    unsafe { (v.isr as *const u8).read_volatile() };
    true
}

/// Switches off every function `vm` owns: no DMA (bus mastering off), no INTx, the virtio
/// device reset, then no decoding either.
pub fn stop_devices(vm: VmId) {
    let bus = BUS.lock();
    for f in bus.owned_by(vm) {
        Ecam.write(f.rid, reg::COMMAND, command::MEMORY | command::INTX_DISABLE);
        if !virtio_reset(f) {
            hvprintln!("pci {}: virtio device did not reset", Rid(f.rid));
        }
        Ecam.write(f.rid, reg::COMMAND, command::INTX_DISABLE);
    }
}

/// Switches on every function `vm` owns for a fresh start: reset, decoding and bus mastering
/// on, INTx enabled (its DMA is confined by the SMMU, which the caller has checked).
pub fn start_devices(vm: VmId) {
    for f in BUS.lock().owned_by_mut(vm) {
        // The previous run's view state goes with it.
        f.sizing = 0;
        f.line = 0;
        Ecam.write(f.rid, reg::COMMAND, command::MEMORY | command::INTX_DISABLE);
        if !virtio_reset(f) {
            hvprintln!("pci {}: virtio device did not reset", Rid(f.rid));
        }
        Ecam.write(f.rid, reg::COMMAND, command::MEMORY | command::BUS_MASTER);
    }
}
