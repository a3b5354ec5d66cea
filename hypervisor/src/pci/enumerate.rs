//! Boot-time enumeration of the root bus: which functions exist, which VM owns each (the
//! partition table), the sizes of their BARs and the addresses the hypervisor assigns them from
//! the BAR window. Functions no VM owns are left with decoding and bus mastering off; functions
//! a VM owns keep both off until the VM starts (`arch/pci.rs`).

use core::fmt;

use sis_platform::partition::{PciFunction, VmConfig, VmId};

use super::{command, reg, rid, ConfigAccess, STATUS_CAP_LIST};

/// Functions the hypervisor keeps track of on the root bus.
pub const MAX_FUNCTIONS: usize = 16;
/// Problems kept for the boot report.
pub const MAX_PROBLEMS: usize = 8;
/// Smallest BAR allocation: one page, so no two functions' registers share a stage-2 page.
pub const BAR_ALIGN: u64 = 0x1000;
/// PCI class code of a host bridge (class 06, subclass 00).
const CLASS_HOST_BRIDGE: u32 = 0x06_00;
/// Capability ID of a vendor-specific capability (virtio's structures).
const CAP_VENDOR: u32 = 0x09;
/// Capabilities walked at most (a looping list ends here).
const MAX_CAPS: usize = 48;
/// virtio PCI capability types.
const VIRTIO_CAP_COMMON: u32 = 1;
const VIRTIO_CAP_ISR: u32 = 3;

/// The kind of a BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    /// 32-bit memory.
    Memory32,
    /// 64-bit memory (two registers).
    Memory64,
    /// I/O space (not supported: no VM gets I/O ports).
    Io,
}

/// One implemented BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// Its kind.
    pub kind: BarKind,
    /// Prefetchable memory.
    pub prefetchable: bool,
    /// Size in bytes (a power of two).
    pub size: u64,
    /// The assigned address (0 until assigned).
    pub addr: u64,
    /// The read-only low bits of the register (type and prefetch flags).
    pub flags: u32,
}

impl Bar {
    /// What the register at `half` (0 = low, 1 = high of a 64-bit BAR) reads after all-ones
    /// were written to it: the size mask and the flags.
    pub fn sizing_value(&self, half: usize) -> u32 {
        let mask = !(self.size - 1);
        if half == 0 {
            (mask as u32 & !0xF) | self.flags
        } else {
            (mask >> 32) as u32
        }
    }

    /// The register value at `half` for the assigned address.
    pub fn register(&self, half: usize) -> u32 {
        if half == 0 {
            (self.addr as u32 & !0xF) | self.flags
        } else {
            (self.addr >> 32) as u32
        }
    }

    /// Registers it takes.
    pub fn registers(&self) -> usize {
        if self.kind == BarKind::Memory64 {
            2
        } else {
            1
        }
    }
}

/// Where a virtio device's registers are (absolute physical addresses), when the function is
/// a virtio PCI device: the hypervisor resets it through `common` when its VM stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioRegs {
    /// The common configuration structure (`device_status` at +0x14).
    pub common: u64,
    /// The ISR status byte (reading it deasserts INTx).
    pub isr: u64,
}

/// A function found on the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Function {
    /// Requester ID (= SMMU stream ID).
    pub rid: u32,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device_id: u16,
    /// Class code (class, subclass, programming interface).
    pub class: u32,
    /// Header type (without the multi-function bit).
    pub header: u8,
    /// The VM that owns it, if any.
    pub owner: Option<VmId>,
    /// Its BARs, by first register index.
    pub bars: [Option<Bar>; reg::BARS],
    /// Interrupt pin (1 = INTA, 0 = none).
    pub pin: u8,
    /// virtio register locations, if it is a virtio device with assigned BARs.
    pub virtio: Option<VirtioRegs>,
    /// The owner's emulated view: BAR registers (by index) that read as their size mask.
    pub sizing: u8,
    /// The owner's interrupt line register (a scratch byte).
    pub line: u8,
}

impl Function {
    /// The BAR that register `index` belongs to, and which half of it (0 = low).
    pub fn bar_of_register(&self, index: usize) -> Option<(Bar, usize)> {
        if let Some(Some(b)) = self.bars.get(index) {
            return Some((*b, 0));
        }
        let below = index.checked_sub(1)?;
        match self.bars[below] {
            Some(b) if b.kind == BarKind::Memory64 => Some((b, 1)),
            _ => None,
        }
    }

    /// Whether it is a bridge (a header other than type 0: it has bus numbers and windows).
    pub fn is_bridge(&self) -> bool {
        self.header != 0
    }
}

/// Something enumeration could not do as the partition table asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The partition table gives a VM a function the bus does not have.
    Missing(PciFunction),
    /// A bridge cannot be given to a VM (it routes other functions).
    Bridge(u32),
    /// A function with an I/O BAR (no VM gets I/O space).
    IoBar(u32),
    /// A BAR that reads back as nonsense.
    BadBar(u32),
    /// The BAR window has no room left.
    WindowFull(u32),
    /// The function's interrupt pin is not INTA, which the partition table routes.
    Pin(u32, u8),
    /// More functions than the hypervisor tracks.
    TooMany(u32),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::smmu::event::Rid;
        match *self {
            Problem::Missing(p) => write!(
                f,
                "{} is in the partition table but not on the bus",
                Rid(p.requester_id())
            ),
            Problem::Bridge(r) => write!(f, "{} is a bridge: not assigned", Rid(r)),
            Problem::IoBar(r) => write!(f, "{} needs I/O space: not assigned", Rid(r)),
            Problem::BadBar(r) => write!(f, "{} has a malformed BAR: not assigned", Rid(r)),
            Problem::WindowFull(r) => write!(f, "{}: BAR window full: not assigned", Rid(r)),
            Problem::Pin(r, p) => write!(f, "{} uses interrupt pin {p}, not INTA", Rid(r)),
            Problem::TooMany(r) => write!(f, "{}: too many functions: ignored", Rid(r)),
        }
    }
}

/// Hands out BAR addresses from a window, each aligned to its size and at least a page.
#[derive(Clone, Copy, Debug)]
pub struct BarWindow {
    next: u64,
    end: u64,
}

impl BarWindow {
    /// The window `[base, base + size)`.
    pub const fn new(base: u64, size: u64) -> Self {
        BarWindow {
            next: base,
            end: base + size,
        }
    }

    /// An address for a BAR of `size` bytes (a power of two).
    pub fn alloc(&mut self, size: u64) -> Option<u64> {
        if size == 0 || !size.is_power_of_two() {
            return None;
        }
        let align = size.max(BAR_ALIGN);
        let addr = self.next.checked_add(align - 1)? & !(align - 1);
        let end = addr.checked_add(align)?;
        if end > self.end {
            return None;
        }
        self.next = end;
        Some(addr)
    }
}

/// The root bus as enumerated.
#[derive(Clone, Debug)]
pub struct Bus {
    functions: [Option<Function>; MAX_FUNCTIONS],
    problems: [Option<Problem>; MAX_PROBLEMS],
}

impl Bus {
    /// A bus with no functions (what a VM sees when the hypervisor switched PCI off).
    pub const fn empty() -> Bus {
        Bus {
            functions: [None; MAX_FUNCTIONS],
            problems: [None; MAX_PROBLEMS],
        }
    }

    /// Every function found.
    pub fn functions(&self) -> impl Iterator<Item = &Function> {
        self.functions.iter().flatten()
    }

    /// The functions `vm` owns.
    pub fn owned_by(&self, vm: VmId) -> impl Iterator<Item = &Function> {
        self.functions().filter(move |f| f.owner == Some(vm))
    }

    /// The functions `vm` owns, mutable (their view state).
    pub fn owned_by_mut(&mut self, vm: VmId) -> impl Iterator<Item = &mut Function> {
        self.functions
            .iter_mut()
            .flatten()
            .filter(move |f| f.owner == Some(vm))
    }

    /// The function with requester ID `rid`, if present.
    pub fn get(&self, rid: u32) -> Option<&Function> {
        self.functions().find(|f| f.rid == rid)
    }

    /// The function with requester ID `rid`, mutable.
    pub fn get_mut(&mut self, rid: u32) -> Option<&mut Function> {
        self.functions.iter_mut().flatten().find(|f| f.rid == rid)
    }

    /// What enumeration could not do.
    pub fn problems(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().flatten()
    }

    fn problem(&mut self, p: Problem) {
        if let Some(slot) = self.problems.iter_mut().find(|s| s.is_none()) {
            *slot = Some(p);
        }
    }

    /// Enumerates bus 0 through `cfg`, assigns the BARs of the functions `table` gives to VMs
    /// from `window`, and turns decoding and bus mastering off everywhere but the host bridge.
    pub fn enumerate(
        cfg: &mut impl ConfigAccess,
        table: &[VmConfig],
        window: &mut BarWindow,
    ) -> Bus {
        let mut bus = Bus::empty();
        let mut n = 0;
        for device in 0..32u8 {
            let mut multi = false;
            for function in 0..8u8 {
                if function > 0 && !multi {
                    break;
                }
                let r = rid(0, device, function);
                let id = cfg.read(r, reg::ID);
                if id & 0xFFFF == 0xFFFF {
                    if function == 0 {
                        break;
                    }
                    continue;
                }
                let header = (cfg.read(r, reg::HEADER) >> 16) as u8;
                if function == 0 {
                    multi = header & 0x80 != 0;
                }
                if n == MAX_FUNCTIONS {
                    bus.problem(Problem::TooMany(r));
                    continue;
                }
                let mut f = Function {
                    rid: r,
                    vendor: id as u16,
                    device_id: (id >> 16) as u16,
                    class: cfg.read(r, reg::CLASS) >> 8,
                    header: header & 0x7F,
                    owner: None,
                    bars: [None; reg::BARS],
                    pin: (cfg.read(r, reg::INTERRUPT) >> 8) as u8,
                    virtio: None,
                    sizing: 0,
                    line: 0,
                };
                if f.class >> 8 != CLASS_HOST_BRIDGE {
                    // Nothing decodes or masters until its VM starts.
                    cfg.write(r, reg::COMMAND, command::INTX_DISABLE);
                }
                f.owner = table
                    .iter()
                    .position(|vm| vm.pci.iter().any(|p| p.requester_id() == r));
                if f.owner.is_some() {
                    match bus.assign(cfg, &mut f, window) {
                        Ok(()) => {}
                        Err(p) => {
                            f.owner = None;
                            bus.problem(p);
                        }
                    }
                }
                bus.functions[n] = Some(f);
                n += 1;
            }
        }
        for vm in table {
            for p in vm.pci {
                if bus.get(p.requester_id()).is_none() {
                    bus.problem(Problem::Missing(*p));
                }
            }
        }
        bus
    }

    /// Sizes and assigns the BARs of a function a VM is to own; finds its virtio registers.
    fn assign(
        &mut self,
        cfg: &mut impl ConfigAccess,
        f: &mut Function,
        window: &mut BarWindow,
    ) -> Result<(), Problem> {
        if f.is_bridge() {
            return Err(Problem::Bridge(f.rid));
        }
        if f.pin != 1 {
            return Err(Problem::Pin(f.rid, f.pin));
        }
        let mut i = 0;
        while i < reg::BARS {
            let Some(mut bar) = size_bar(cfg, f.rid, i)? else {
                i += 1;
                continue;
            };
            if bar.kind == BarKind::Io {
                return Err(Problem::IoBar(f.rid));
            }
            bar.addr = window.alloc(bar.size).ok_or(Problem::WindowFull(f.rid))?;
            let at = reg::BAR0 + 4 * i as u16;
            cfg.write(f.rid, at, bar.register(0));
            if bar.kind == BarKind::Memory64 {
                cfg.write(f.rid, at + 4, bar.register(1));
            }
            f.bars[i] = Some(bar);
            i += bar.registers();
        }
        f.virtio = virtio_regs(cfg, f);
        Ok(())
    }
}

/// Sizes BAR register `i` of `rid` (decoding is off): writes all-ones, reads the mask back,
/// restores the register. `None` for an unimplemented BAR.
fn size_bar(cfg: &mut impl ConfigAccess, rid: u32, i: usize) -> Result<Option<Bar>, Problem> {
    let at = reg::BAR0 + 4 * i as u16;
    let orig = cfg.read(rid, at);
    cfg.write(rid, at, u32::MAX);
    let lo = cfg.read(rid, at);
    cfg.write(rid, at, orig);
    if lo == 0 {
        return Ok(None);
    }
    if orig & 1 == 1 {
        let mask = u64::from(lo & !0x3) | 0xFFFF_FFFF_0000_0000;
        return Ok(Some(Bar {
            kind: BarKind::Io,
            prefetchable: false,
            size: (!mask).wrapping_add(1),
            addr: 0,
            flags: orig & 0x3,
        }));
    }
    let (kind, hi) = match (orig >> 1) & 3 {
        0 => (BarKind::Memory32, 0xFFFF_FFFF),
        2 if i + 1 < reg::BARS => {
            let orig_hi = cfg.read(rid, at + 4);
            cfg.write(rid, at + 4, u32::MAX);
            let hi = cfg.read(rid, at + 4);
            cfg.write(rid, at + 4, orig_hi);
            (BarKind::Memory64, hi)
        }
        _ => return Err(Problem::BadBar(rid)),
    };
    let mask = u64::from(hi) << 32 | u64::from(lo & !0xF);
    let size = (!mask).wrapping_add(1);
    if mask == 0 || !size.is_power_of_two() {
        return Err(Problem::BadBar(rid));
    }
    Ok(Some(Bar {
        kind,
        prefetchable: orig & 0x8 != 0,
        size,
        addr: 0,
        flags: orig & 0xF,
    }))
}

/// The virtio common-configuration and ISR locations of `f` (BARs already assigned), from its
/// vendor-specific capabilities; `None` if it is not a virtio device or they are malformed.
fn virtio_regs(cfg: &mut impl ConfigAccess, f: &Function) -> Option<VirtioRegs> {
    if f.vendor != 0x1AF4 || cfg.read(f.rid, reg::COMMAND) & STATUS_CAP_LIST == 0 {
        return None;
    }
    let (mut common, mut isr) = (None, None);
    let mut ptr = cfg.read(f.rid, reg::CAP_PTR) & 0xFC;
    for _ in 0..MAX_CAPS {
        if ptr < 0x40 {
            break;
        }
        let at = ptr as u16;
        let head = cfg.read(f.rid, at);
        if head & 0xFF == CAP_VENDOR {
            let cfg_type = head >> 24;
            let bar = cfg.read(f.rid, at + 4) & 0xFF;
            let offset = u64::from(cfg.read(f.rid, at + 8));
            let b = f.bars.get(bar as usize).copied().flatten();
            let addr = b.filter(|b| offset < b.size).map(|b| b.addr + offset);
            match cfg_type {
                VIRTIO_CAP_COMMON if common.is_none() => common = addr,
                VIRTIO_CAP_ISR if isr.is_none() => isr = addr,
                _ => {}
            }
        }
        ptr = (head >> 8) & 0xFC;
    }
    Some(VirtioRegs {
        common: common?,
        isr: isr?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::fake::{Fake, VIRTIO_COMMON_OFFSET, VIRTIO_ISR_OFFSET};
    use sis_platform::layout::phys;
    use sis_platform::partition::{PARTITIONS, VM_CTL};

    fn window() -> BarWindow {
        BarWindow::new(phys::PCIE_BAR_BASE, phys::PCIE_BAR_SIZE)
    }

    #[test]
    fn finds_the_functions_and_assigns_the_owners_bars() {
        let mut cfg = Fake::qemu_virt();
        let bus = Bus::enumerate(&mut cfg, &PARTITIONS, &mut window());
        assert_eq!(
            bus.problems().count(),
            0,
            "{:?}",
            bus.problems().collect::<Vec<_>>()
        );
        assert_eq!(bus.functions().count(), 3);
        let host = bus.get(rid(0, 0, 0)).unwrap();
        assert_eq!((host.owner, host.class >> 8), (None, 0x0600));
        let owned: Vec<_> = bus.owned_by(VM_CTL).map(|f| f.rid).collect();
        assert_eq!(owned, [0x08, 0x10]);
        let console = bus.get(0x08).unwrap();
        let bar = console.bars[4].unwrap();
        assert_eq!(
            (bar.kind, bar.size, bar.prefetchable),
            (BarKind::Memory64, 0x4000, true)
        );
        assert_eq!(bar.addr, phys::PCIE_BAR_BASE);
        let rng = bus.get(0x10).unwrap().bars[4].unwrap();
        assert_eq!(rng.addr, phys::PCIE_BAR_BASE + 0x4000);
        // The real registers hold the assigned addresses; decoding and DMA are off.
        assert_eq!(cfg.reg(0x08, 0x20), phys::PCIE_BAR_BASE as u32 | 0xC);
        assert_eq!(cfg.reg(0x08, 0x24), 0);
        assert_eq!(cfg.reg(0x08, 0x04) & 0x7, 0);
        assert_eq!(
            console.virtio,
            Some(VirtioRegs {
                common: bar.addr + VIRTIO_COMMON_OFFSET,
                isr: bar.addr + VIRTIO_ISR_OFFSET
            })
        );
        // The host bridge's command register is left alone.
        assert!(cfg.writes_to(0).is_empty());
    }

    #[test]
    fn missing_bridge_and_io_functions_are_not_assigned() {
        let mut cfg = Fake::qemu_virt();
        cfg.remove(0x10);
        cfg.add_bridge(0x08);
        let bus = Bus::enumerate(&mut cfg, &PARTITIONS, &mut window());
        let problems: Vec<_> = bus.problems().copied().collect();
        assert_eq!(
            problems,
            [
                Problem::Bridge(0x08),
                Problem::Missing(PARTITIONS[VM_CTL].pci[1])
            ]
        );
        assert_eq!(bus.owned_by(VM_CTL).count(), 0);
        // The bridge's bus numbers were never written.
        assert!(cfg
            .writes_to(0x08)
            .iter()
            .all(|&(off, _)| off != reg::BUS_NUMBERS));

        let mut cfg = Fake::qemu_virt();
        cfg.add_io_bar(0x10);
        let bus = Bus::enumerate(&mut cfg, &PARTITIONS, &mut window());
        assert_eq!(
            bus.problems().copied().collect::<Vec<_>>(),
            [Problem::IoBar(0x10)]
        );
        assert_eq!(
            bus.owned_by(VM_CTL).map(|f| f.rid).collect::<Vec<_>>(),
            [0x08]
        );
    }

    #[test]
    fn window_alignment_and_exhaustion() {
        let mut w = BarWindow::new(0x1000_0000, 0x10_0000);
        assert_eq!(w.alloc(0x100), Some(0x1000_0000), "rounded up to a page");
        assert_eq!(w.alloc(0x4000), Some(0x1000_4000), "aligned to its size");
        assert_eq!(w.alloc(0x8_0000), Some(0x1008_0000));
        assert_eq!(w.alloc(0x10_0000), None, "no room");
        assert_eq!(w.alloc(0x3000), None, "not a power of two");
        assert_eq!(w.alloc(0), None);
        let mut small = BarWindow::new(0x1000_0000, 0x2000);
        let mut cfg = Fake::qemu_virt();
        let bus = Bus::enumerate(&mut cfg, &PARTITIONS, &mut small);
        assert!(bus.problems().any(|p| *p == Problem::WindowFull(0x08)));
    }
}
