//! The static partition table: which cores, RAM, devices, interrupts and shared regions each VM
//! owns. Plain data, checked by [`validate`] at compile time (a bad table does not build).

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

/// Which embedded guest image a VM boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Image {
    /// `guest-ctl`.
    Ctl,
    /// `guest-llm`.
    Llm,
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
    /// Tag in front of each console line.
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
    /// Guest image.
    pub image: Image,
}

const fn ram(pa: u64, size: u64) -> Mapping {
    Mapping {
        pa,
        ipa: ipa::RAM_BASE,
        size,
        access: Access::ReadWrite,
    }
}

const SHARED_RW: Mapping = Mapping {
    pa: phys::SHARED_BASE,
    ipa: ipa::SHARED_BASE,
    size: phys::SHARED_SIZE,
    access: Access::ReadWrite,
};

const AUDIT_RO: Mapping = Mapping {
    pa: phys::AUDIT_BASE,
    ipa: ipa::AUDIT_BASE,
    size: phys::AUDIT_SIZE,
    access: Access::ReadOnly,
};

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

const MODEL_RO: Mapping = Mapping {
    pa: phys::MODEL_BASE,
    ipa: ipa::MODEL_BASE,
    size: phys::MODEL_SIZE,
    access: Access::ReadOnly,
};

/// VM id of the control guest.
pub const VM_CTL: VmId = 0;
/// VM id of the LLM guest.
pub const VM_LLM: VmId = 1;

/// The partition table. Core 0 runs the control guest (and the hypervisor's UART RX and
/// monitor work); cores 1-3 run the LLM guest.
pub const PARTITIONS: [VmConfig; 2] = [
    VmConfig {
        name: "ctl",
        tag: "[ctl] ",
        cores: &[0],
        ram: ram(0x4400_0000, 0x0400_0000),
        regions: &[SHARED_RW, AUDIT_RO],
        devices: &[],
        irqs: &[intx(1, 0), intx(2, 0)],
        pci: &CTL_PCI,
        emulated: Emulated { uart: true },
        image: Image::Ctl,
    },
    VmConfig {
        name: "llm",
        tag: "[llm] ",
        cores: &[1, 2, 3],
        ram: ram(0x5000_0000, 0x1800_0000),
        regions: &[SHARED_RW, AUDIT_RO, MODEL_RO],
        devices: &[],
        irqs: &[],
        pci: &[],
        emulated: Emulated { uart: true },
        image: Image::Llm,
    },
];

const _: () = match validate(&PARTITIONS) {
    Ok(()) => {}
    Err(e) => panic!("{}", e.message()),
};

/// What is wrong with a partition table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A VM has no cores.
    NoCores { vm: usize },
    /// A core number beyond the machine's cores.
    CoreOutOfRange { vm: usize, core: usize },
    /// A core given to two VMs (or twice to one).
    CoreTwice { core: usize },
    /// A region not aligned to 4 KiB or of size 0.
    Unaligned { vm: usize },
    /// A RAM or shared region outside physical RAM.
    OutsideRam { vm: usize },
    /// Private memory of two VMs overlaps, or overlaps the hypervisor or a shared region.
    Overlap { vm: usize, other: usize },
    /// Two mappings of one VM overlap in its guest-physical space.
    IpaOverlap { vm: usize },
    /// An interrupt given to two VMs, or one the hypervisor keeps.
    IrqTwice { irq: u32 },
    /// An interrupt number that is not an SPI the machine has.
    IrqOutOfRange { vm: usize, irq: u32 },
    /// A device page outside the MMIO window.
    DeviceNotMmio { vm: usize },
    /// A PCI function given twice (to two VMs, or twice to one).
    PciFunctionTwice { bus: u8, device: u8, function: u8 },
    /// A PCI function that cannot be assigned: not on the root bus, the host bridge (slot 0),
    /// or a device or function number out of range.
    PciBadFunction { vm: usize },
    /// A PCI function's INTx is not the INTID its slot's INTA is routed to, or not one of the
    /// VM's interrupts.
    PciIntx { vm: usize },
    /// A mapping of a VM with PCI functions overlaps the BAR window or the configuration view
    /// in its guest-physical space (BARs are mapped at their physical address).
    PciWindowOverlap { vm: usize },
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

/// Whether `m` is one of the known shared regions (which several VMs may map).
const fn is_shared(m: &Mapping) -> bool {
    m.pa == phys::SHARED_BASE || m.pa == phys::AUDIT_BASE || m.pa == phys::MODEL_BASE
}

/// Checks a partition table. `const` so the table is checked when the crate is built.
pub const fn validate(vms: &[VmConfig]) -> Result<(), ConfigError> {
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
        while r < vm.regions.len() {
            let m = &vm.regions[r];
            if !aligned(m) {
                return Err(ConfigError::Unaligned { vm: v });
            }
            if !in_ram(m) {
                return Err(ConfigError::OutsideRam { vm: v });
            }
            if !is_shared(m) || overlaps(m.pa, m.size, phys::HV_BASE, phys::HV_SIZE) {
                return Err(ConfigError::Overlap {
                    vm: v,
                    other: usize::MAX,
                });
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
            if n == irq::UART || n == irq::DOORBELL {
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

/// The VM that owns physical core `core`.
pub fn vm_of_core(core: usize) -> Option<VmId> {
    PARTITIONS.iter().position(|vm| vm.cores.contains(&core))
}

/// A VM by monitor name.
pub fn vm_by_name(name: &str) -> Option<VmId> {
    PARTITIONS.iter().position(|vm| vm.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> [VmConfig; 2] {
        PARTITIONS
    }

    #[test]
    fn default_table_is_valid() {
        assert_eq!(validate(&PARTITIONS), Ok(()));
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
        assert_eq!(validate(&t), Err(ConfigError::CoreTwice { core: 0 }));
    }

    #[test]
    fn core_out_of_range() {
        let mut t = base();
        t[1].cores = &[1, 7];
        assert_eq!(
            validate(&t),
            Err(ConfigError::CoreOutOfRange { vm: 1, core: 7 })
        );
    }

    #[test]
    fn no_cores() {
        let mut t = base();
        t[0].cores = &[];
        assert_eq!(validate(&t), Err(ConfigError::NoCores { vm: 0 }));
    }

    #[test]
    fn ram_overlap() {
        let mut t = base();
        t[1].ram = ram(0x4600_0000, 0x0400_0000);
        assert_eq!(validate(&t), Err(ConfigError::Overlap { vm: 0, other: 1 }));
    }

    #[test]
    fn ram_overlaps_hypervisor() {
        let mut t = base();
        t[0].ram = ram(0x4100_0000, 0x0100_0000);
        assert_eq!(
            validate(&t),
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
        assert_eq!(validate(&t), Err(ConfigError::Overlap { vm: 0, other: 0 }));
    }

    #[test]
    fn ram_outside_memory() {
        let mut t = base();
        t[1].ram = ram(0xC000_0000, 0x1000_0000);
        assert_eq!(validate(&t), Err(ConfigError::OutsideRam { vm: 1 }));
    }

    #[test]
    fn unaligned_region() {
        let mut t = base();
        t[1].ram = ram(0x5000_0800, 0x1000);
        assert_eq!(validate(&t), Err(ConfigError::Unaligned { vm: 1 }));
    }

    #[test]
    fn irq_given_twice() {
        let mut t = base();
        t[0].irqs = &[48];
        t[1].irqs = &[49, 48];
        assert_eq!(validate(&t), Err(ConfigError::IrqTwice { irq: 48 }));
    }

    #[test]
    fn irq_kept_by_hypervisor() {
        let mut t = base();
        t[0].irqs = &[irq::UART];
        assert_eq!(validate(&t), Err(ConfigError::IrqTwice { irq: irq::UART }));
    }

    #[test]
    fn irq_not_an_spi() {
        let mut t = base();
        t[0].irqs = &[27];
        assert_eq!(
            validate(&t),
            Err(ConfigError::IrqOutOfRange { vm: 0, irq: 27 })
        );
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
        assert_eq!(validate(&t), Ok(()));
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
            validate(&t),
            Err(ConfigError::PciFunctionTwice {
                bus: 0,
                device: 2,
                function: 0
            })
        );
        let mut t = base();
        t[0].pci = Box::leak(Box::new([function(1), function(1)]));
        assert_eq!(
            validate(&t),
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
                validate(&t),
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
        assert_eq!(validate(&t), Err(ConfigError::PciIntx { vm: 0 }));
        // The right INTID, but the VM does not own it.
        let mut t = base();
        t[0].irqs = &[37];
        t[0].pci = leak(function(1));
        assert_eq!(validate(&t), Err(ConfigError::PciIntx { vm: 0 }));
        // Two VMs on one INTx line: the line is an interrupt given twice.
        let mut t = base();
        t[1].irqs = &[36];
        t[1].pci = leak(function(5));
        assert_eq!(validate(&t), Err(ConfigError::IrqTwice { irq: 36 }));
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
                validate(&t),
                Err(ConfigError::PciWindowOverlap { vm: 0 }),
                "{at:#x}"
            );
            // A VM without PCI functions sees neither, so the same mapping is fine there.
            let mut t = base();
            t[1].regions = leak(m);
            assert_eq!(validate(&t), Ok(()), "{at:#x}");
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
        assert_eq!(validate(&t), Err(ConfigError::Overlap { vm: 0, other: 1 }));
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
        assert_eq!(validate(&t), Err(ConfigError::IpaOverlap { vm: 0 }));
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
