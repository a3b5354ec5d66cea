//! The static partition table, which describes the whole system: which cores, RAM, devices,
//! interrupts, PCI functions and shared regions each VM owns, its console key and tag and the
//! image it boots ([`VmConfig`]); the regions several VMs map ([`SharedRegion`]); the channels
//! between VMs ([`Channel`]: peers, ring region, doorbell interrupt); and the core that does the
//! work no guest owns ([`System::work_core`]). Plain data, checked by [`validate`] at compile
//! time (a bad table does not build).
//!
//! What other parts of SIS would otherwise restate is derived from [`SYSTEM`]: the hypervisor's
//! console keys and help, the images it embeds and `scripts/build.sh` builds (through the
//! `layout` example), the doorbell a VM may ring, each guest's channel peer, where physical UART
//! input is routed.

use crate::layout::{ipa, irq, phys, PAGE_SIZE};

/// Index of a VM in [`PARTITIONS`].
pub type VmId = usize;

/// Access rights of a VM to a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read only: a write faults and stops the VM.
    ReadOnly,
    /// Read and write.
    ReadWrite,
}

/// A range of guest-physical addresses mapped onto host-physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Host-physical base.
    pub pa: u64,
    /// Guest-physical base.
    pub ipa: u64,
    /// Size in bytes (a multiple of 4 KiB).
    pub size: u64,
    /// Rights of the VM.
    pub access: Access,
}

/// A PCI function (on the root bus, behind the SMMU) assigned to a VM. The hypervisor
/// enumerates the bus, assigns the function's BARs, maps them into the VM, shows the VM a
/// filtered view of the function's configuration space, confines its DMA to the VM's RAM and
/// forwards its INTx interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciFunction {
    /// Bus number (only the root bus, 0, is supported).
    pub bus: u8,
    /// Device (slot) number, 1..=31 (slot 0 is the host bridge).
    pub device: u8,
    /// Function number, 0..=7.
    pub function: u8,
    /// The INTID its INTA# line raises: [`intx`]`(device, 0)`, one of the VM's `irqs`.
    pub intx: u32,
}

impl PciFunction {
    /// The PCI requester ID, which is also its SMMU stream ID: `bus << 8 | device << 3 | fn`.
    pub const fn requester_id(&self) -> u32 {
        (self.bus as u32) << 8 | (self.device as u32) << 3 | self.function as u32
    }
}

/// The INTID that pin `pin` (0 = INTA .. 3 = INTD) of a function in slot `device` of the root
/// bus raises (the standard swizzle QEMU `virt` describes in its `interrupt-map`).
pub const fn intx(device: u8, pin: u8) -> u32 {
    irq::PCIE_INTX_BASE + (device as u32 + pin as u32) % 4
}

/// Emulated devices a VM gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Emulated {
    /// A PL011 at [`ipa::UART_BASE`], multiplexed on the physical UART.
    pub uart: bool,
}

/// One VM of the static partition table.
#[derive(Clone, Copy, Debug)]
pub struct VmConfig {
    /// Short name used by the monitor (`ctl`, `llm`).
    pub name: &'static str,
    /// The key that follows Ctrl-A to focus this VM's console (`'1'`..=`'9'`).
    pub console_key: u8,
    /// Tag in front of each console line (`[ctl] `).
    pub tag: &'static str,
    /// Physical cores (MPIDR Aff0); the first one boots the VM.
    pub cores: &'static [usize],
    /// The VM's RAM, seen at [`ipa::RAM_BASE`].
    pub ram: Mapping,
    /// Other memory mappings: shared regions, the audit log, the model.
    pub regions: &'static [Mapping],
    /// Pass-through MMIO pages (device memory).
    pub devices: &'static [Mapping],
    /// Physical SPIs routed to this VM.
    pub irqs: &'static [u32],
    /// PCI functions assigned to this VM.
    pub pci: &'static [PciFunction],
    /// Emulated devices.
    pub emulated: Emulated,
    /// The guest kernel it boots: the name of its package and binary (`guest-ctl`).
    /// `scripts/build.sh` builds every image the table names and the hypervisor embeds them.
    pub image: &'static str,
}

/// A memory region outside every VM's RAM that several VMs may map, each with its own rights
/// (listed in their [`VmConfig::regions`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedRegion {
    /// What it holds (`ring`, `audit`, `model`).
    pub name: &'static str,
    /// Host-physical base.
    pub pa: u64,
    /// Size in bytes (a multiple of 4 KiB).
    pub size: u64,
}

/// A channel between two VMs: a shared-memory ring in one of the [`SharedRegion`]s, which both
/// peers map read-write and no other VM maps, and a doorbell: the virtual SPI the
/// `HV_DOORBELL` hypercall raises in the peer. The hypervisor lets a VM ring only the peers of
/// its channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel {
    /// The VM that initialises the ring and sends requests (`guest_rt::channel::ctl`).
    pub requester: VmId,
    /// The VM that attaches to the ring and answers (`guest_rt::channel::llm`).
    pub responder: VmId,
    /// Physical base of the shared region that holds the ring.
    pub region: u64,
    /// INTID of the doorbell, the same in both peers (an SPI no VM owns physically).
    pub doorbell: u32,
}

impl Channel {
    /// The other end of the channel as seen from `vm`, if `vm` is one of its ends.
    pub const fn peer(&self, vm: VmId) -> Option<VmId> {
        if vm == self.requester {
            Some(self.responder)
        } else if vm == self.responder {
            Some(self.requester)
        } else {
            None
        }
    }
}

/// The whole system: the VMs, the regions several of them map, the channels between them, and
/// what belongs to no VM.
#[derive(Clone, Copy, Debug)]
pub struct System {
    /// The VMs; a VM's id is its index.
    pub vms: &'static [VmConfig],
    /// The regions VMs may map besides their RAM.
    pub shared: &'static [SharedRegion],
    /// The channels between VMs.
    pub channels: &'static [Channel],
    /// The core that does the work no guest owns: physical UART input, the monitor's commands,
    /// the SMMU's fault and error interrupts. Whichever VM owns that core pays for it in time.
    pub work_core: usize,
    /// The key that follows Ctrl-A to focus the hypervisor's monitor.
    pub monitor_key: u8,
    /// Tag of the hypervisor's (and the monitor's) console lines.
    pub monitor_tag: &'static str,
}

const fn ram(pa: u64, size: u64) -> Mapping {
    Mapping {
        pa,
        ipa: ipa::RAM_BASE,
        size,
        access: Access::ReadWrite,
    }
}

/// The shared ring region of the ctl-llm channel.
pub const RING: SharedRegion = SharedRegion {
    name: "ring",
    pa: phys::SHARED_BASE,
    size: phys::SHARED_SIZE,
};

/// The audit log: the hypervisor writes it, guests map it read-only.
pub const AUDIT: SharedRegion = SharedRegion {
    name: "audit",
    pa: phys::AUDIT_BASE,
    size: phys::AUDIT_SIZE,
};

/// The model region, filled by QEMU's loader (`scripts/run.sh`), read-only to its VM.
pub const MODEL: SharedRegion = SharedRegion {
    name: "model",
    pa: phys::MODEL_BASE,
    size: phys::MODEL_SIZE,
};

impl SharedRegion {
    /// A VM's mapping of all of the region at guest-physical `ipa` with `access`.
    pub const fn map(&self, ipa: u64, access: Access) -> Mapping {
        Mapping {
            pa: self.pa,
            ipa,
            size: self.size,
            access,
        }
    }
}

const SHARED_RW: Mapping = RING.map(ipa::SHARED_BASE, Access::ReadWrite);
const AUDIT_RO: Mapping = AUDIT.map(ipa::AUDIT_BASE, Access::ReadOnly);
const MODEL_RO: Mapping = MODEL.map(ipa::MODEL_BASE, Access::ReadOnly);

/// guest-ctl's devices: virtio-serial (port `sis.datactl`) in slot 1 and virtio-rng in slot 2
/// (`scripts/run.sh` puts them there), each raising its INTA.
const CTL_PCI: [PciFunction; 2] = [
    PciFunction {
        bus: 0,
        device: 1,
        function: 0,
        intx: intx(1, 0),
    },
    PciFunction {
        bus: 0,
        device: 2,
        function: 0,
        intx: intx(2, 0),
    },
];

/// The partition table. Core 0 runs the control guest (and the hypervisor's work no guest owns,
/// [`SYSTEM`]`.work_core`); cores 1-3 run the LLM guest.
pub const PARTITIONS: [VmConfig; 2] = [
    VmConfig {
        name: "ctl",
        console_key: b'1',
        tag: "[ctl] ",
        cores: &[0],
        ram: ram(0x4400_0000, 0x0400_0000),
        regions: &[SHARED_RW, AUDIT_RO],
        devices: &[],
        irqs: &[intx(1, 0), intx(2, 0)],
        pci: &CTL_PCI,
        emulated: Emulated { uart: true },
        image: "guest-ctl",
    },
    VmConfig {
        name: "llm",
        console_key: b'2',
        tag: "[llm] ",
        cores: &[1, 2, 3],
        ram: ram(0x5000_0000, 0x1800_0000),
        regions: &[SHARED_RW, AUDIT_RO, MODEL_RO],
        devices: &[],
        irqs: &[],
        pci: &[],
        emulated: Emulated { uart: true },
        image: "guest-llm",
    },
];

/// VM id of the control guest.
pub const VM_CTL: VmId = vm_id(&PARTITIONS, "ctl");
/// VM id of the LLM guest.
pub const VM_LLM: VmId = vm_id(&PARTITIONS, "llm");

/// The regions VMs may map besides their RAM.
pub const SHARED: [SharedRegion; 3] = [RING, AUDIT, MODEL];

/// The channels: guest-ctl sends requests to guest-llm through the ring region, each rings the
/// other's doorbell (virtual SPI [`irq::DOORBELL`]).
pub const CHANNELS: [Channel; 1] = [Channel {
    requester: VM_CTL,
    responder: VM_LLM,
    region: RING.pa,
    doorbell: irq::DOORBELL,
}];

/// The system SIS runs: [`PARTITIONS`], [`SHARED`], [`CHANNELS`]; the hypervisor's own work on
/// core 0; Ctrl-A `0` and `[hv] ` for the monitor.
pub const SYSTEM: System = System {
    vms: &PARTITIONS,
    shared: &SHARED,
    channels: &CHANNELS,
    work_core: 0,
    monitor_key: b'0',
    monitor_tag: "[hv] ",
};

const _: () = match validate(&SYSTEM) {
    Ok(()) => {}
    Err(e) => panic!("{}", e.message()),
};

/// What is wrong with a partition table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A VM has no cores.
    NoCores {
        /// The VM (its index in the table).
        vm: usize,
    },
    /// A core number beyond the machine's cores.
    CoreOutOfRange {
        /// The VM (its index in the table).
        vm: usize,
        /// The core.
        core: usize,
    },
    /// A core given to two VMs (or twice to one).
    CoreTwice {
        /// The core.
        core: usize,
    },
    /// A region not aligned to 4 KiB or of size 0.
    Unaligned {
        /// The VM (its index in the table).
        vm: usize,
    },
    /// A RAM or shared region outside physical RAM.
    OutsideRam {
        /// The VM (its index in the table).
        vm: usize,
    },
    /// Private memory of two VMs overlaps, or overlaps the hypervisor or a shared region.
    Overlap {
        /// The VM (its index in the table).
        vm: usize,
        /// The other owner: a VM index, or `usize::MAX` for the hypervisor or a shared region.
        other: usize,
    },
    /// Two mappings of one VM overlap in its guest-physical space.
    IpaOverlap {
        /// The VM (its index in the table).
        vm: usize,
    },
    /// An interrupt given to two VMs, or one the hypervisor keeps.
    IrqTwice {
        /// The interrupt (INTID).
        irq: u32,
    },
    /// An interrupt number that is not an SPI the machine has.
    IrqOutOfRange {
        /// The VM (its index in the table).
        vm: usize,
        /// The interrupt (INTID).
        irq: u32,
    },
    /// A device page outside the MMIO window.
    DeviceNotMmio {
        /// The VM (its index in the table).
        vm: usize,
    },
    /// A PCI function given twice (to two VMs, or twice to one).
    PciFunctionTwice {
        /// PCI bus.
        bus: u8,
        /// PCI device (slot).
        device: u8,
        /// PCI function.
        function: u8,
    },
    /// A PCI function that cannot be assigned: not on the root bus, the host bridge (slot 0),
    /// or a device or function number out of range.
    PciBadFunction {
        /// The VM (its index in the table).
        vm: usize,
    },
    /// A PCI function's INTx is not the INTID its slot's INTA is routed to, or not one of the
    /// VM's interrupts.
    PciIntx {
        /// The VM (its index in the table).
        vm: usize,
    },
    /// A mapping of a VM with PCI functions overlaps the BAR window or the configuration view
    /// in its guest-physical space (BARs are mapped at their physical address).
    PciWindowOverlap {
        /// The VM (its index in the table).
        vm: usize,
    },
    /// A VM region that is not inside one of the declared shared regions.
    NotShared {
        /// The VM (its index in the table).
        vm: usize,
    },
    /// A shared region not 4 KiB aligned, empty, outside RAM, or overlapping the hypervisor or
    /// another shared region.
    BadSharedRegion {
        /// Index of the shared region.
        index: usize,
    },
    /// A channel whose peers are not two different VMs of the table.
    ChannelPeers {
        /// Index of the channel.
        channel: usize,
    },
    /// A channel whose region is not a shared region mapped read-write by both peers (at the
    /// same size) and by no other VM.
    ChannelRegion {
        /// Index of the channel.
        channel: usize,
    },
    /// A channel doorbell that is not an SPI, is a physical interrupt (a VM's or the
    /// hypervisor's), or is a peer's doorbell on another channel too.
    ChannelDoorbell {
        /// Index of the channel.
        channel: usize,
    },
    /// The work core is not a core of the machine.
    WorkCore {
        /// The core.
        core: usize,
    },
    /// Two VMs with one name, or a VM named like the monitor (`hv`).
    NameTwice {
        /// The VM (its index in the table).
        vm: usize,
    },
    /// A console key that is not a digit 1-9, or that another console has.
    ConsoleKey {
        /// The VM (its index in the table).
        vm: usize,
    },
    /// A console tag that is not `[...] `, or that another console has.
    ConsoleTag {
        /// The VM (its index in the table).
        vm: usize,
    },
    /// A VM with no image name.
    NoImage {
        /// The VM (its index in the table).
        vm: usize,
    },
}

impl ConfigError {
    /// A one-line explanation (also the compile error text).
    pub const fn message(&self) -> &'static str {
        match self {
            ConfigError::NoCores { .. } => "partition table: a VM has no cores",
            ConfigError::CoreOutOfRange { .. } => "partition table: core number beyond the machine",
            ConfigError::CoreTwice { .. } => "partition table: a core is given twice",
            ConfigError::Unaligned { .. } => "partition table: region not 4 KiB aligned or empty",
            ConfigError::OutsideRam { .. } => "partition table: region outside physical RAM",
            ConfigError::Overlap { .. } => "partition table: memory of two owners overlaps",
            ConfigError::IpaOverlap { .. } => "partition table: two mappings of a VM overlap",
            ConfigError::IrqTwice { .. } => "partition table: an IRQ is given twice",
            ConfigError::IrqOutOfRange { .. } => "partition table: IRQ is not an SPI",
            ConfigError::DeviceNotMmio { .. } => "partition table: device page outside MMIO",
            ConfigError::PciFunctionTwice { .. } => {
                "partition table: a PCI function is given twice"
            }
            ConfigError::PciBadFunction { .. } => {
                "partition table: PCI function not assignable (root bus, slots 1-31, fn 0-7)"
            }
            ConfigError::PciIntx { .. } => {
                "partition table: PCI INTx is not its slot's INTA or not the VM's interrupt"
            }
            ConfigError::PciWindowOverlap { .. } => {
                "partition table: a mapping overlaps the PCI BAR window or configuration view"
            }
            ConfigError::NotShared { .. } => {
                "partition table: a VM region is not inside a declared shared region"
            }
            ConfigError::BadSharedRegion { .. } => {
                "partition table: shared region unaligned, outside RAM or overlapping"
            }
            ConfigError::ChannelPeers { .. } => {
                "partition table: a channel's peers are not two VMs of the table"
            }
            ConfigError::ChannelRegion { .. } => {
                "partition table: a channel region is not shared read-write by exactly its peers"
            }
            ConfigError::ChannelDoorbell { .. } => {
                "partition table: a channel doorbell is not a free SPI or is given twice"
            }
            ConfigError::WorkCore { .. } => "partition table: work core beyond the machine",
            ConfigError::NameTwice { .. } => "partition table: two consoles have one name",
            ConfigError::ConsoleKey { .. } => {
                "partition table: console key not a digit 1-9 or given twice"
            }
            ConfigError::ConsoleTag { .. } => {
                "partition table: console tag not \"[...] \" or given twice"
            }
            ConfigError::NoImage { .. } => "partition table: a VM has no image",
        }
    }
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({:?})", self.message(), self)
    }
}

const fn overlaps(a_base: u64, a_size: u64, b_base: u64, b_size: u64) -> bool {
    a_base < b_base + b_size && b_base < a_base + a_size
}

const fn aligned(m: &Mapping) -> bool {
    m.size != 0
        && m.pa.is_multiple_of(PAGE_SIZE)
        && m.ipa.is_multiple_of(PAGE_SIZE)
        && m.size.is_multiple_of(PAGE_SIZE)
}

const fn in_ram(m: &Mapping) -> bool {
    m.pa >= phys::RAM_BASE && m.pa + m.size <= phys::RAM_BASE + phys::RAM_SIZE
}

/// Whether `m` lies inside one of the declared shared regions (which several VMs may map).
const fn is_shared(shared: &[SharedRegion], m: &Mapping) -> bool {
    let mut i = 0;
    while i < shared.len() {
        let r = &shared[i];
        if m.pa >= r.pa && m.pa + m.size <= r.pa + r.size {
            return true;
        }
        i += 1;
    }
    false
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The id of the VM named `name` in `vms`; a missing name fails the build where it is used in
/// a constant.
pub const fn vm_id(vms: &[VmConfig], name: &str) -> VmId {
    let mut v = 0;
    while v < vms.len() {
        if str_eq(vms[v].name, name) {
            return v;
        }
        v += 1;
    }
    panic!("partition table: no VM of that name")
}

/// Checks the whole system: the VMs ([`validate_vms`]), the shared regions, the channels, the
/// work core and the consoles. `const` so the table is checked when the crate is built.
pub const fn validate(sys: &System) -> Result<(), ConfigError> {
    if let Err(e) = validate_vms(sys.vms, sys) {
        return Err(e);
    }
    if sys.work_core >= phys::NUM_CORES {
        return Err(ConfigError::WorkCore {
            core: sys.work_core,
        });
    }
    if let Err(e) = validate_shared(sys) {
        return Err(e);
    }
    if let Err(e) = validate_channels(sys) {
        return Err(e);
    }
    validate_consoles(sys)
}

/// Checks the VMs of a table: cores, memory, devices, interrupts, PCI functions.
const fn validate_vms(vms: &[VmConfig], sys: &System) -> Result<(), ConfigError> {
    let mut owner = [usize::MAX; 64];
    let mut v = 0;
    while v < vms.len() {
        let vm = &vms[v];
        if vm.cores.is_empty() {
            return Err(ConfigError::NoCores { vm: v });
        }
        let mut c = 0;
        while c < vm.cores.len() {
            let core = vm.cores[c];
            if core >= phys::NUM_CORES {
                return Err(ConfigError::CoreOutOfRange { vm: v, core });
            }
            if owner[core] != usize::MAX {
                return Err(ConfigError::CoreTwice { core });
            }
            owner[core] = v;
            c += 1;
        }
        if !aligned(&vm.ram) {
            return Err(ConfigError::Unaligned { vm: v });
        }
        if !in_ram(&vm.ram) {
            return Err(ConfigError::OutsideRam { vm: v });
        }
        if overlaps(vm.ram.pa, vm.ram.size, phys::HV_BASE, phys::HV_SIZE) {
            return Err(ConfigError::Overlap {
                vm: v,
                other: usize::MAX,
            });
        }
        // Private RAM never overlaps another VM's RAM or any shared region.
        let mut o = 0;
        while o < vms.len() {
            if o != v && overlaps(vm.ram.pa, vm.ram.size, vms[o].ram.pa, vms[o].ram.size) {
                return Err(ConfigError::Overlap { vm: v, other: o });
            }
            let mut r = 0;
            while r < vms[o].regions.len() {
                let m = &vms[o].regions[r];
                if overlaps(vm.ram.pa, vm.ram.size, m.pa, m.size) {
                    return Err(ConfigError::Overlap { vm: v, other: o });
                }
                r += 1;
            }
            o += 1;
        }
        let mut r = 0;
        while r < sys.shared.len() {
            if overlaps(vm.ram.pa, vm.ram.size, sys.shared[r].pa, sys.shared[r].size) {
                return Err(ConfigError::Overlap {
                    vm: v,
                    other: usize::MAX,
                });
            }
            r += 1;
        }
        let mut r = 0;
        while r < vm.regions.len() {
            let m = &vm.regions[r];
            if !aligned(m) {
                return Err(ConfigError::Unaligned { vm: v });
            }
            if !in_ram(m) {
                return Err(ConfigError::OutsideRam { vm: v });
            }
            if overlaps(m.pa, m.size, phys::HV_BASE, phys::HV_SIZE) {
                return Err(ConfigError::Overlap {
                    vm: v,
                    other: usize::MAX,
                });
            }
            if !is_shared(sys.shared, m) {
                return Err(ConfigError::NotShared { vm: v });
            }
            r += 1;
        }
        let mut d = 0;
        while d < vm.devices.len() {
            let m = &vm.devices[d];
            if !aligned(m) {
                return Err(ConfigError::Unaligned { vm: v });
            }
            if m.pa < phys::VIRTIO_MMIO_BASE
                || m.pa + m.size
                    > phys::VIRTIO_MMIO_BASE + phys::VIRTIO_MMIO_COUNT * phys::VIRTIO_MMIO_STRIDE
            {
                return Err(ConfigError::DeviceNotMmio { vm: v });
            }
            // A device page is owned by one VM only.
            let mut o = 0;
            while o < vms.len() {
                let mut e = 0;
                while e < vms[o].devices.len() {
                    let n = &vms[o].devices[e];
                    if (o != v || e != d) && overlaps(m.pa, m.size, n.pa, n.size) {
                        return Err(ConfigError::Overlap { vm: v, other: o });
                    }
                    e += 1;
                }
                o += 1;
            }
            d += 1;
        }
        // No two mappings of the VM overlap in guest-physical space, and none hides an emulated
        // device.
        let total = 1 + vm.regions.len() + vm.devices.len();
        let mut i = 0;
        while i < total {
            let a = nth_mapping(vm, i);
            if overlaps(
                a.ipa,
                a.size,
                ipa::GICD_BASE,
                phys::UART_BASE + PAGE_SIZE - ipa::GICD_BASE,
            ) {
                return Err(ConfigError::IpaOverlap { vm: v });
            }
            let mut j = i + 1;
            while j < total {
                let b = nth_mapping(vm, j);
                if overlaps(a.ipa, a.size, b.ipa, b.size) {
                    return Err(ConfigError::IpaOverlap { vm: v });
                }
                j += 1;
            }
            i += 1;
        }
        // Interrupts: SPIs only, each to one VM, none the hypervisor keeps.
        let mut i = 0;
        while i < vm.irqs.len() {
            let n = vm.irqs[i];
            if n < 32 || n > irq::MAX_SPI {
                return Err(ConfigError::IrqOutOfRange { vm: v, irq: n });
            }
            if n == irq::UART || is_doorbell(sys, n) {
                return Err(ConfigError::IrqTwice { irq: n });
            }
            let mut o = 0;
            while o < vms.len() {
                let mut k = 0;
                while k < vms[o].irqs.len() {
                    if (o != v || k != i) && vms[o].irqs[k] == n {
                        return Err(ConfigError::IrqTwice { irq: n });
                    }
                    k += 1;
                }
                o += 1;
            }
            i += 1;
        }
        if let Err(e) = validate_pci(vms, v) {
            return Err(e);
        }
        if vm.image.is_empty() {
            return Err(ConfigError::NoImage { vm: v });
        }
        v += 1;
    }
    Ok(())
}

/// Whether `intid` is a channel's doorbell.
const fn is_doorbell(sys: &System, intid: u32) -> bool {
    let mut c = 0;
    while c < sys.channels.len() {
        if sys.channels[c].doorbell == intid {
            return true;
        }
        c += 1;
    }
    false
}

/// Shared regions: aligned, in RAM, clear of the hypervisor and of each other.
const fn validate_shared(sys: &System) -> Result<(), ConfigError> {
    let mut i = 0;
    while i < sys.shared.len() {
        let r = &sys.shared[i];
        let m = Mapping {
            pa: r.pa,
            ipa: 0,
            size: r.size,
            access: Access::ReadOnly,
        };
        if !aligned(&m) || !in_ram(&m) || overlaps(r.pa, r.size, phys::HV_BASE, phys::HV_SIZE) {
            return Err(ConfigError::BadSharedRegion { index: i });
        }
        let mut j = i + 1;
        while j < sys.shared.len() {
            if overlaps(r.pa, r.size, sys.shared[j].pa, sys.shared[j].size) {
                return Err(ConfigError::BadSharedRegion { index: j });
            }
            j += 1;
        }
        i += 1;
    }
    Ok(())
}

/// How `vm` maps the shared region `r`: `Some(true)` read-write over all of it,
/// `Some(false)` some other way, `None` not at all.
const fn maps_whole_rw(vm: &VmConfig, r: &SharedRegion) -> Option<bool> {
    let mut i = 0;
    let mut found = None;
    while i < vm.regions.len() {
        let m = &vm.regions[i];
        if overlaps(m.pa, m.size, r.pa, r.size) {
            let whole = m.pa == r.pa && m.size == r.size;
            let rw = matches!(m.access, Access::ReadWrite);
            let ok = whole && rw;
            found = match found {
                None => Some(ok),
                Some(prev) => Some(prev && ok),
            };
        }
        i += 1;
    }
    found
}

/// Channels: two different VMs; a shared region both map read-write and nobody else maps; a
/// doorbell that is an SPI no VM or the hypervisor owns physically, and no other channel of
/// either peer uses.
const fn validate_channels(sys: &System) -> Result<(), ConfigError> {
    let mut c = 0;
    while c < sys.channels.len() {
        let ch = &sys.channels[c];
        if ch.requester >= sys.vms.len()
            || ch.responder >= sys.vms.len()
            || ch.requester == ch.responder
        {
            return Err(ConfigError::ChannelPeers { channel: c });
        }
        let mut r = 0;
        let mut region = None;
        while r < sys.shared.len() {
            if sys.shared[r].pa == ch.region {
                region = Some(&sys.shared[r]);
            }
            r += 1;
        }
        let Some(region) = region else {
            return Err(ConfigError::ChannelRegion { channel: c });
        };
        let mut v = 0;
        while v < sys.vms.len() {
            let peer = v == ch.requester || v == ch.responder;
            let ok = match maps_whole_rw(&sys.vms[v], region) {
                Some(rw) => peer && rw,
                None => !peer,
            };
            if !ok {
                return Err(ConfigError::ChannelRegion { channel: c });
            }
            v += 1;
        }
        let d = ch.doorbell;
        if d < 32 || d > irq::MAX_SPI || d == irq::UART {
            return Err(ConfigError::ChannelDoorbell { channel: c });
        }
        let mut v = 0;
        while v < sys.vms.len() {
            let mut i = 0;
            while i < sys.vms[v].irqs.len() {
                if sys.vms[v].irqs[i] == d {
                    return Err(ConfigError::ChannelDoorbell { channel: c });
                }
                i += 1;
            }
            v += 1;
        }
        let mut o = 0;
        while o < sys.channels.len() {
            let other = &sys.channels[o];
            let shares_a_peer =
                other.peer(ch.requester).is_some() || other.peer(ch.responder).is_some();
            if o != c && other.doorbell == d && shares_a_peer {
                return Err(ConfigError::ChannelDoorbell { channel: c });
            }
            o += 1;
        }
        c += 1;
    }
    Ok(())
}

/// Consoles: names, keys and tags distinct (the monitor's included), keys digits 1-9, tags of
/// the form `[...] `.
const fn validate_consoles(sys: &System) -> Result<(), ConfigError> {
    let mut v = 0;
    while v < sys.vms.len() {
        let vm = &sys.vms[v];
        if str_eq(vm.name, "hv") || str_eq(vm.name, "monitor") {
            return Err(ConfigError::NameTwice { vm: v });
        }
        if vm.console_key < b'1' || vm.console_key > b'9' || vm.console_key == sys.monitor_key {
            return Err(ConfigError::ConsoleKey { vm: v });
        }
        let t = vm.tag.as_bytes();
        if t.len() < 4
            || t[0] != b'['
            || t[t.len() - 2] != b']'
            || t[t.len() - 1] != b' '
            || str_eq(vm.tag, sys.monitor_tag)
        {
            return Err(ConfigError::ConsoleTag { vm: v });
        }
        let mut o = 0;
        while o < v {
            let other = &sys.vms[o];
            if str_eq(other.name, vm.name) {
                return Err(ConfigError::NameTwice { vm: v });
            }
            if other.console_key == vm.console_key {
                return Err(ConfigError::ConsoleKey { vm: v });
            }
            if str_eq(other.tag, vm.tag) {
                return Err(ConfigError::ConsoleTag { vm: v });
            }
            o += 1;
        }
        v += 1;
    }
    Ok(())
}

/// The PCI rules for VM `v`: functions assignable and given once, INTx routed as the slot's
/// INTA and owned by the VM, and no mapping where the VM sees BARs or its configuration view.
const fn validate_pci(vms: &[VmConfig], v: usize) -> Result<(), ConfigError> {
    let vm = &vms[v];
    let mut i = 0;
    while i < vm.pci.len() {
        let f = &vm.pci[i];
        if f.bus != 0 || f.device == 0 || f.device > 31 || f.function > 7 {
            return Err(ConfigError::PciBadFunction { vm: v });
        }
        let mut o = 0;
        while o < vms.len() {
            let mut k = 0;
            while k < vms[o].pci.len() {
                let g = &vms[o].pci[k];
                if (o != v || k != i) && g.requester_id() == f.requester_id() {
                    return Err(ConfigError::PciFunctionTwice {
                        bus: f.bus,
                        device: f.device,
                        function: f.function,
                    });
                }
                k += 1;
            }
            o += 1;
        }
        let mut owned = false;
        let mut k = 0;
        while k < vm.irqs.len() {
            owned |= vm.irqs[k] == f.intx;
            k += 1;
        }
        if f.intx != intx(f.device, 0) || !owned {
            return Err(ConfigError::PciIntx { vm: v });
        }
        i += 1;
    }
    if !vm.pci.is_empty() {
        let total = 1 + vm.regions.len() + vm.devices.len();
        let mut i = 0;
        while i < total {
            let m = nth_mapping(vm, i);
            if overlaps(m.ipa, m.size, phys::PCIE_BAR_BASE, phys::PCIE_BAR_SIZE)
                || overlaps(m.ipa, m.size, ipa::PCI_ECAM_BASE, ipa::PCI_ECAM_SIZE)
            {
                return Err(ConfigError::PciWindowOverlap { vm: v });
            }
            i += 1;
        }
    }
    Ok(())
}

const fn nth_mapping(vm: &VmConfig, i: usize) -> Mapping {
    if i == 0 {
        vm.ram
    } else if i <= vm.regions.len() {
        vm.regions[i - 1]
    } else {
        vm.devices[i - 1 - vm.regions.len()]
    }
}

impl VmConfig {
    /// Bit `n` set for each core `n` of the VM.
    pub const fn cpu_mask(&self) -> u64 {
        let mut mask = 0;
        let mut i = 0;
        while i < self.cores.len() {
            mask |= 1 << self.cores[i];
            i += 1;
        }
        mask
    }

    /// The mapping of one of the VM's regions by physical base, if it has it.
    pub fn region(&self, pa: u64) -> Option<&Mapping> {
        self.regions.iter().find(|m| m.pa == pa)
    }
}

impl System {
    /// The VM that owns physical core `core`.
    pub fn vm_of_core(&self, core: usize) -> Option<VmId> {
        self.vms.iter().position(|vm| vm.cores.contains(&core))
    }

    /// A VM by monitor name.
    pub fn vm_by_name(&self, name: &str) -> Option<VmId> {
        self.vms.iter().position(|vm| vm.name == name)
    }

    /// The VM whose console Ctrl-A `key` focuses (the monitor's key is no VM's).
    pub fn vm_by_key(&self, key: u8) -> Option<VmId> {
        self.vms.iter().position(|vm| vm.console_key == key)
    }

    /// The channel between VMs `a` and `b` (either direction), if they have one.
    pub fn channel_between(&self, a: VmId, b: VmId) -> Option<&'static Channel> {
        self.channels
            .iter()
            .find(|c| a != b && c.peer(a) == Some(b))
    }

    /// The doorbell INTID `from` may raise in `to`: the doorbell of their channel. `None`
    /// (refused) for a VM without a channel to `to`, including itself.
    pub fn doorbell(&self, from: VmId, to: VmId) -> Option<u32> {
        self.channel_between(from, to).map(|c| c.doorbell)
    }

    /// The first channel `vm` is an end of (the one the guest runtime drives).
    pub fn channel_of(&self, vm: VmId) -> Option<&'static Channel> {
        self.channels.iter().find(|c| c.peer(vm).is_some())
    }

    /// The VMs that map the shared region at physical `pa`, with their rights.
    pub fn sharers(&self, pa: u64) -> impl Iterator<Item = (VmId, Access)> + '_ {
        self.vms
            .iter()
            .enumerate()
            .filter_map(move |(id, vm)| vm.region(pa).map(|m| (id, m.access)))
    }

    /// The guest images the VMs boot, each once, in table order.
    pub fn images(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.vms
            .iter()
            .enumerate()
            .filter(|(i, vm)| !self.vms[..*i].iter().any(|o| o.image == vm.image))
            .map(|(_, vm)| vm.image)
    }

    /// The console keys as text: `0 monitor, 1 ctl, 2 llm` with `each` = `""`, or
    /// `Ctrl-A 0 monitor, Ctrl-A 1 ctl, ...` with `each` = `"Ctrl-A "`.
    pub fn console_keys(&self, each: &'static str) -> ConsoleKeys {
        ConsoleKeys { sys: *self, each }
    }
}

/// The console keys of a [`System`], for help texts ([`System::console_keys`]).
#[derive(Clone, Copy, Debug)]
pub struct ConsoleKeys {
    sys: System,
    each: &'static str,
}

impl core::fmt::Display for ConsoleKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let key = |k: u8| char::from(k);
        write!(f, "{}{} monitor", self.each, key(self.sys.monitor_key))?;
        for vm in self.sys.vms {
            write!(f, ", {}{} {}", self.each, key(vm.console_key), vm.name)?;
        }
        Ok(())
    }
}

/// The VM that owns physical core `core`.
pub fn vm_of_core(core: usize) -> Option<VmId> {
    SYSTEM.vm_of_core(core)
}

/// A VM by monitor name.
pub fn vm_by_name(name: &str) -> Option<VmId> {
    SYSTEM.vm_by_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> [VmConfig; 2] {
        PARTITIONS
    }

    /// Validates `vms` with the rest of the system as it is.
    fn check(vms: [VmConfig; 2]) -> Result<(), ConfigError> {
        validate(&System {
            vms: Box::leak(Box::new(vms)),
            ..SYSTEM
        })
    }

    #[test]
    fn default_table_is_valid() {
        assert_eq!(validate(&SYSTEM), Ok(()));
        assert_eq!(PARTITIONS[VM_CTL].cpu_mask(), 0b0001);
        assert_eq!(PARTITIONS[VM_LLM].cpu_mask(), 0b1110);
        assert_eq!(vm_of_core(0), Some(VM_CTL));
        assert_eq!(vm_of_core(3), Some(VM_LLM));
        assert_eq!(vm_by_name("llm"), Some(VM_LLM));
        assert_eq!(vm_by_name("nope"), None);
    }

    #[test]
    fn core_given_twice() {
        let mut t = base();
        t[1].cores = &[0, 2];
        assert_eq!(check(t), Err(ConfigError::CoreTwice { core: 0 }));
    }

    #[test]
    fn core_out_of_range() {
        let mut t = base();
        t[1].cores = &[1, 7];
        assert_eq!(
            check(t),
            Err(ConfigError::CoreOutOfRange { vm: 1, core: 7 })
        );
    }

    #[test]
    fn no_cores() {
        let mut t = base();
        t[0].cores = &[];
        assert_eq!(check(t), Err(ConfigError::NoCores { vm: 0 }));
    }

    #[test]
    fn ram_overlap() {
        let mut t = base();
        t[1].ram = ram(0x4600_0000, 0x0400_0000);
        assert_eq!(check(t), Err(ConfigError::Overlap { vm: 0, other: 1 }));
    }

    #[test]
    fn ram_overlaps_hypervisor() {
        let mut t = base();
        t[0].ram = ram(0x4100_0000, 0x0100_0000);
        assert_eq!(
            check(t),
            Err(ConfigError::Overlap {
                vm: 0,
                other: usize::MAX
            })
        );
    }

    #[test]
    fn ram_overlaps_shared_region() {
        let mut t = base();
        t[0].ram = ram(0x4700_0000, 0x0200_0000);
        assert_eq!(check(t), Err(ConfigError::Overlap { vm: 0, other: 0 }));
    }

    #[test]
    fn ram_outside_memory() {
        let mut t = base();
        t[1].ram = ram(0xC000_0000, 0x1000_0000);
        assert_eq!(check(t), Err(ConfigError::OutsideRam { vm: 1 }));
    }

    #[test]
    fn unaligned_region() {
        let mut t = base();
        t[1].ram = ram(0x5000_0800, 0x1000);
        assert_eq!(check(t), Err(ConfigError::Unaligned { vm: 1 }));
    }

    #[test]
    fn irq_given_twice() {
        let mut t = base();
        t[0].irqs = &[48];
        t[1].irqs = &[49, 48];
        assert_eq!(check(t), Err(ConfigError::IrqTwice { irq: 48 }));
    }

    #[test]
    fn irq_kept_by_hypervisor() {
        let mut t = base();
        t[0].irqs = &[irq::UART];
        assert_eq!(check(t), Err(ConfigError::IrqTwice { irq: irq::UART }));
    }

    #[test]
    fn irq_not_an_spi() {
        let mut t = base();
        t[0].irqs = &[27];
        assert_eq!(check(t), Err(ConfigError::IrqOutOfRange { vm: 0, irq: 27 }));
    }

    fn leak<T>(x: T) -> &'static [T] {
        core::slice::from_ref(Box::leak(Box::new(x)))
    }

    fn function(device: u8) -> PciFunction {
        PciFunction {
            bus: 0,
            device,
            function: 0,
            intx: intx(device, 0),
        }
    }

    #[test]
    fn ctl_owns_its_pci_functions_and_their_intx() {
        let ctl = &PARTITIONS[VM_CTL];
        assert_eq!(ctl.pci.len(), 2);
        assert_eq!(ctl.pci[0].requester_id(), 0x08);
        assert_eq!(ctl.pci[1].requester_id(), 0x10);
        // QEMU virt: slot 1 INTA -> SPI 4 (INTID 36), slot 2 INTA -> SPI 5 (INTID 37).
        assert_eq!((ctl.pci[0].intx, ctl.pci[1].intx), (36, 37));
        assert_eq!(intx(3, 1), 35);
        assert!(PARTITIONS[VM_LLM].pci.is_empty());
    }

    #[test]
    fn pci_function_given_twice() {
        let mut t = base();
        t[1].irqs = &[36];
        t[1].pci = leak(function(1));
        t[0].irqs = &[37];
        t[0].pci = leak(function(2));
        assert_eq!(check(t), Ok(()));
        t[1].pci = leak(function(2));
        t[1].irqs = &[37];
        t[0].irqs = &[];
        t[0].pci = leak(PciFunction {
            intx: 0,
            ..function(2)
        });
        // vm 0's interrupt list no longer has 37, so vm 1 may own it, but the function is
        // the same.
        assert_eq!(
            check(t),
            Err(ConfigError::PciFunctionTwice {
                bus: 0,
                device: 2,
                function: 0
            })
        );
        let mut t = base();
        t[0].pci = Box::leak(Box::new([function(1), function(1)]));
        assert_eq!(
            check(t),
            Err(ConfigError::PciFunctionTwice {
                bus: 0,
                device: 1,
                function: 0
            })
        );
    }

    #[test]
    fn pci_function_not_assignable() {
        for f in [
            PciFunction {
                bus: 1,
                ..function(1)
            },
            function(0),
            PciFunction {
                device: 32,
                intx: intx(32, 0),
                ..function(1)
            },
            PciFunction {
                function: 8,
                ..function(1)
            },
        ] {
            let mut t = base();
            t[0].pci = leak(f);
            assert_eq!(
                check(t),
                Err(ConfigError::PciBadFunction { vm: 0 }),
                "{f:?}"
            );
        }
    }

    #[test]
    fn pci_intx_must_be_the_slots_inta_and_owned() {
        let mut t = base();
        // Slot 1's INTA is 36, not 37.
        t[0].pci = leak(PciFunction {
            intx: 37,
            ..function(1)
        });
        assert_eq!(check(t), Err(ConfigError::PciIntx { vm: 0 }));
        // The right INTID, but the VM does not own it.
        let mut t = base();
        t[0].irqs = &[37];
        t[0].pci = leak(function(1));
        assert_eq!(check(t), Err(ConfigError::PciIntx { vm: 0 }));
        // Two VMs on one INTx line: the line is an interrupt given twice.
        let mut t = base();
        t[1].irqs = &[36];
        t[1].pci = leak(function(5));
        assert_eq!(check(t), Err(ConfigError::IrqTwice { irq: 36 }));
    }

    #[test]
    fn mapping_over_the_bar_window_or_config_view() {
        for at in [phys::PCIE_BAR_BASE + 0x10_0000, ipa::PCI_ECAM_BASE] {
            let m = Mapping {
                pa: phys::SHARED_BASE,
                ipa: at,
                size: phys::SHARED_SIZE,
                access: Access::ReadWrite,
            };
            let mut t = base();
            t[0].regions = leak(m);
            assert_eq!(
                check(t),
                Err(ConfigError::PciWindowOverlap { vm: 0 }),
                "{at:#x}"
            );
            // A VM without PCI functions sees neither, so the same mapping is fine there.
            let mut t = base();
            t[1].regions = leak(m);
            assert_eq!(check(t), Ok(()), "{at:#x}");
        }
    }

    #[test]
    fn device_page_twice() {
        let page = Mapping {
            pa: phys::VIRTIO_MMIO_BASE,
            ipa: phys::VIRTIO_MMIO_BASE,
            size: PAGE_SIZE,
            access: Access::ReadWrite,
        };
        let mut t = base();
        t[0].devices = core::slice::from_ref(Box::leak(Box::new(page)));
        t[1].devices = core::slice::from_ref(Box::leak(Box::new(page)));
        assert_eq!(check(t), Err(ConfigError::Overlap { vm: 0, other: 1 }));
    }

    #[test]
    fn mapping_hides_emulated_device() {
        let m = Mapping {
            pa: phys::SHARED_BASE,
            ipa: 0x0900_0000,
            size: phys::SHARED_SIZE,
            access: Access::ReadWrite,
        };
        let mut t = base();
        t[0].regions = core::slice::from_ref(Box::leak(Box::new(m)));
        assert_eq!(check(t), Err(ConfigError::IpaOverlap { vm: 0 }));
    }

    #[test]
    fn region_outside_the_shared_regions() {
        let mut t = base();
        // Inside RAM, clear of every VM's RAM, but not a declared shared region.
        let stray = Mapping {
            pa: 0x4900_0000,
            ipa: 0x3800_0000,
            size: PAGE_SIZE,
            access: Access::ReadWrite,
        };
        t[1].regions = Box::leak(Box::new([SHARED_RW, AUDIT_RO, MODEL_RO, stray]));
        assert_eq!(check(t), Err(ConfigError::NotShared { vm: 1 }));
        // Declared, it is fine.
        let sys = System {
            vms: Box::leak(Box::new(t)),
            shared: Box::leak(Box::new([
                RING,
                AUDIT,
                MODEL,
                SharedRegion {
                    name: "extra",
                    pa: 0x4900_0000,
                    size: PAGE_SIZE,
                },
            ])),
            ..SYSTEM
        };
        assert_eq!(validate(&sys), Ok(()));
    }

    #[test]
    fn shared_region_rules() {
        let extra = |pa, size| SharedRegion {
            name: "extra",
            pa,
            size,
        };
        for bad in [
            // Overlaps the hypervisor.
            extra(phys::HV_BASE + 0x10_0000, PAGE_SIZE),
            // Outside RAM.
            extra(0x2000_0000, PAGE_SIZE),
            // Unaligned, empty.
            extra(0x4900_0800, PAGE_SIZE),
            extra(0x4900_0000, 0),
            // Overlaps the audit log.
            extra(
                phys::AUDIT_BASE + phys::AUDIT_SIZE - PAGE_SIZE,
                2 * PAGE_SIZE,
            ),
        ] {
            let sys = System {
                shared: Box::leak(Box::new([RING, AUDIT, MODEL, bad])),
                ..SYSTEM
            };
            assert_eq!(
                validate(&sys),
                Err(ConfigError::BadSharedRegion { index: 3 }),
                "{bad:?}"
            );
        }
        let sys = System {
            shared: Box::leak(Box::new([
                RING,
                AUDIT,
                MODEL,
                extra(0x4900_0000, PAGE_SIZE),
            ])),
            ..SYSTEM
        };
        assert_eq!(validate(&sys), Ok(()));
        // A VM's RAM over a declared region nobody maps.
        let sys = System {
            shared: Box::leak(Box::new([
                RING,
                AUDIT,
                MODEL,
                extra(0x4500_0000, PAGE_SIZE),
            ])),
            ..SYSTEM
        };
        assert_eq!(
            validate(&sys),
            Err(ConfigError::Overlap {
                vm: 0,
                other: usize::MAX
            })
        );
    }

    fn with_channels(channels: &[Channel]) -> Result<(), ConfigError> {
        validate(&System {
            channels: Box::leak(channels.to_vec().into_boxed_slice()),
            ..SYSTEM
        })
    }

    #[test]
    fn channel_peers() {
        let ch = CHANNELS[0];
        for bad in [
            Channel {
                responder: VM_CTL,
                ..ch
            },
            Channel { responder: 2, ..ch },
        ] {
            assert_eq!(
                with_channels(&[bad]),
                Err(ConfigError::ChannelPeers { channel: 0 })
            );
        }
        // Reversed roles are a valid table.
        let rev = Channel {
            requester: VM_LLM,
            responder: VM_CTL,
            ..ch
        };
        assert_eq!(with_channels(&[rev]), Ok(()));
    }

    #[test]
    fn channel_region_is_shared_read_write_by_exactly_its_peers() {
        let ch = CHANNELS[0];
        // Not a declared region.
        let e = with_channels(&[Channel {
            region: 0x4900_0000,
            ..ch
        }]);
        assert_eq!(e, Err(ConfigError::ChannelRegion { channel: 0 }));
        // The audit log: the peers map it read-only.
        let e = with_channels(&[Channel {
            region: AUDIT.pa,
            ..ch
        }]);
        assert_eq!(e, Err(ConfigError::ChannelRegion { channel: 0 }));
        // A peer that does not map the ring.
        let mut t = base();
        t[1].regions = Box::leak(Box::new([AUDIT_RO, MODEL_RO]));
        assert_eq!(check(t), Err(ConfigError::ChannelRegion { channel: 0 }));
        // A peer that maps it read-only.
        let mut t = base();
        let ring_ro = Mapping {
            access: Access::ReadOnly,
            ..SHARED_RW
        };
        t[1].regions = Box::leak(Box::new([ring_ro, AUDIT_RO, MODEL_RO]));
        assert_eq!(check(t), Err(ConfigError::ChannelRegion { channel: 0 }));
        // A peer that maps only part of it.
        let mut t = base();
        let half = Mapping {
            size: SHARED_RW.size / 2,
            ..SHARED_RW
        };
        t[1].regions = Box::leak(Box::new([half, AUDIT_RO, MODEL_RO]));
        assert_eq!(check(t), Err(ConfigError::ChannelRegion { channel: 0 }));
    }

    #[test]
    fn channel_doorbell_rules() {
        let ch = CHANNELS[0];
        for d in [27, 96, irq::UART] {
            assert_eq!(
                with_channels(&[Channel { doorbell: d, ..ch }]),
                Err(ConfigError::ChannelDoorbell { channel: 0 }),
                "{d}"
            );
        }
        // ctl's INTx line as a doorbell: the physical interrupt is found first.
        assert_eq!(
            with_channels(&[Channel {
                doorbell: intx(1, 0),
                ..ch
            }]),
            Err(ConfigError::IrqTwice { irq: intx(1, 0) })
        );
        // A doorbell is not a VM's physical interrupt either way round.
        let mut t = base();
        t[1].irqs = &[irq::DOORBELL];
        assert_eq!(check(t), Err(ConfigError::IrqTwice { irq: irq::DOORBELL }));
        // Two channels of one peer on one doorbell.
        assert_eq!(
            with_channels(&[ch, ch]),
            Err(ConfigError::ChannelDoorbell { channel: 0 })
        );
    }

    #[test]
    fn work_core_must_exist() {
        let sys = System {
            work_core: phys::NUM_CORES,
            ..SYSTEM
        };
        assert_eq!(validate(&sys), Err(ConfigError::WorkCore { core: 4 }));
    }

    #[test]
    fn console_names_keys_and_tags() {
        let mut t = base();
        t[1].name = "ctl";
        assert_eq!(check(t), Err(ConfigError::NameTwice { vm: 1 }));
        let mut t = base();
        t[0].name = "hv";
        assert_eq!(check(t), Err(ConfigError::NameTwice { vm: 0 }));
        for key in [b'1', b'0', b'a', 0x01] {
            let mut t = base();
            t[1].console_key = key;
            assert_eq!(check(t), Err(ConfigError::ConsoleKey { vm: 1 }), "{key}");
        }
        for tag in ["[ctl] ", "[hv] ", "llm ", "[llm]", ""] {
            let mut t = base();
            t[1].tag = tag;
            assert_eq!(check(t), Err(ConfigError::ConsoleTag { vm: 1 }), "{tag:?}");
        }
        let mut t = base();
        t[1].image = "";
        assert_eq!(check(t), Err(ConfigError::NoImage { vm: 1 }));
    }

    #[test]
    fn derived_from_the_table() {
        assert_eq!(VM_CTL, 0);
        assert_eq!(VM_LLM, 1);
        assert_eq!(
            std::format!("{}", SYSTEM.console_keys("")),
            "0 monitor, 1 ctl, 2 llm"
        );
        assert_eq!(
            std::format!("{}", SYSTEM.console_keys("Ctrl-A ")),
            "Ctrl-A 0 monitor, Ctrl-A 1 ctl, Ctrl-A 2 llm"
        );
        assert_eq!(SYSTEM.vm_by_key(b'2'), Some(VM_LLM));
        assert_eq!(SYSTEM.vm_by_key(b'0'), None);
        assert_eq!(SYSTEM.doorbell(VM_CTL, VM_LLM), Some(irq::DOORBELL));
        assert_eq!(SYSTEM.doorbell(VM_LLM, VM_CTL), Some(irq::DOORBELL));
        assert_eq!(SYSTEM.doorbell(VM_LLM, VM_LLM), None);
        assert_eq!(
            SYSTEM.images().collect::<std::vec::Vec<_>>(),
            ["guest-ctl", "guest-llm"]
        );
        let ring: std::vec::Vec<_> = SYSTEM.sharers(RING.pa).collect();
        assert_eq!(
            ring,
            [(VM_CTL, Access::ReadWrite), (VM_LLM, Access::ReadWrite)]
        );
        let model: std::vec::Vec<_> = SYSTEM.sharers(MODEL.pa).collect();
        assert_eq!(model, [(VM_LLM, Access::ReadOnly)]);
    }

    #[test]
    fn messages_are_distinct() {
        let a = ConfigError::CoreTwice { core: 1 };
        let b = ConfigError::IrqTwice { irq: 40 };
        assert_ne!(a.message(), b.message());
    }

    extern crate std;
    use std::boxed::Box;
}
