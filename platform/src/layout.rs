//! Addresses and interrupt numbers.
//!
//! `phys` is the machine (QEMU 7.2 `virt`, GICv3, `-m 2G`); `ipa` is what every guest sees
//! through its stage-2 translation. Guest RAM is offset-mapped: both guests see their own RAM at
//! [`ipa::RAM_BASE`], whatever physical range the partition table gives them.

/// One 4 KiB page.
pub const PAGE_SIZE: u64 = 0x1000;
/// One 2 MiB block (stage-1/stage-2 level-2 block).
pub const BLOCK_2M: u64 = 0x20_0000;

/// Physical addresses and INTIDs of the QEMU `virt` machine.
pub mod phys {
    /// GICv3 distributor.
    pub const GICD_BASE: u64 = 0x0800_0000;
    /// Size of the distributor frame.
    pub const GICD_SIZE: u64 = 0x1_0000;
    /// First GICv3 redistributor (one 128 KiB frame pair per CPU).
    pub const GICR_BASE: u64 = 0x080A_0000;
    /// Stride between two CPUs' redistributors (RD_base + SGI_base).
    pub const GICR_STRIDE: u64 = 0x2_0000;
    /// The one physical PL011 UART.
    pub const UART_BASE: u64 = 0x0900_0000;
    /// First virtio-mmio transport; QEMU fills them from the top slot down.
    pub const VIRTIO_MMIO_BASE: u64 = 0x0a00_0000;
    /// Size of one virtio-mmio transport.
    pub const VIRTIO_MMIO_STRIDE: u64 = 0x200;
    /// Number of virtio-mmio transports on `virt`.
    pub const VIRTIO_MMIO_COUNT: u64 = 32;
    /// Start of RAM.
    pub const RAM_BASE: u64 = 0x4000_0000;
    /// RAM size the run script gives QEMU (`-m 2G`); the DTB is authoritative at run time.
    pub const RAM_SIZE: u64 = 0x8000_0000;
    /// Where QEMU leaves the device tree for an image linked above RAM base.
    pub const DTB_ADDR: u64 = 0x4000_0000;
    /// Number of physical cores (`-smp 4`).
    pub const NUM_CORES: usize = 4;

    /// Physical range the hypervisor image, its stacks, heap and page tables live in.
    pub const HV_BASE: u64 = 0x4000_0000;
    /// Size of the hypervisor's own RAM.
    pub const HV_SIZE: u64 = 0x0400_0000;
    /// Link address of the hypervisor (above the DTB); `hypervisor/build.rs` links it here.
    pub const HV_LOAD: u64 = 0x4020_0000;
    /// Size of each core's EL2 stack (the linker reserves `NUM_CORES` of them).
    pub const HV_STACK_SIZE: u64 = 0x1_0000;

    /// Where the run script places the model file with QEMU's loader device.
    pub const MODEL_BASE: u64 = 0x7000_0000;
    /// Largest model the partition table reserves room for.
    pub const MODEL_SIZE: u64 = 0x1000_0000;

    /// SMMUv3 in front of the PCIe host bridge (`-machine virt,iommu=smmuv3`); the hypervisor's
    /// alone (mapped into no guest).
    pub const SMMU_BASE: u64 = 0x0905_0000;
    /// Size of the SMMU's two 64 KiB register pages.
    pub const SMMU_SIZE: u64 = 0x2_0000;
    /// PCIe ECAM in the low window (`highmem=off`): 16 buses of 1 MiB, 4 KiB per function.
    pub const PCIE_ECAM_BASE: u64 = 0x3f00_0000;
    /// Size of the ECAM window.
    pub const PCIE_ECAM_SIZE: u64 = 0x0100_0000;
    /// The 32-bit PCIe memory window (CPU and PCI addresses are the same).
    pub const PCIE_MMIO_BASE: u64 = 0x1000_0000;
    /// Size of the 32-bit PCIe memory window.
    pub const PCIE_MMIO_SIZE: u64 = 0x2eff_0000;
    /// The part of the memory window the hypervisor assigns BARs from. BARs are mapped into
    /// their owner at guest-physical = physical, so no VM may have a mapping here (the partition
    /// table checks it), and guests map it as device memory.
    pub const PCIE_BAR_BASE: u64 = 0x1000_0000;
    /// Size of the BAR window.
    pub const PCIE_BAR_SIZE: u64 = 0x1000_0000;

    /// Shared inter-guest ring region.
    pub const SHARED_BASE: u64 = 0x4800_0000;
    /// Size of the shared ring region.
    pub const SHARED_SIZE: u64 = 0x10_0000;
    /// Hypervisor-kept audit log (read-only to guests).
    pub const AUDIT_BASE: u64 = 0x4810_0000;
    /// Size of the audit log region.
    pub const AUDIT_SIZE: u64 = 0x10_0000;
}

/// INTIDs (GICv3 numbering).
pub mod irq {
    /// SGI the hypervisor uses to kick another core (pending virtual IRQs or messages).
    pub const SGI_KICK: u32 = 1;
    /// GIC maintenance interrupt (list-register underflow).
    pub const MAINTENANCE: u32 = 25;
    /// EL2 physical timer.
    pub const HYP_TIMER: u32 = 26;
    /// EL1 virtual timer, owned by whichever guest runs on the core.
    pub const VTIMER: u32 = 27;
    /// PL011 UART (physical, and the same number for each guest's emulated one).
    pub const UART: u32 = 33;
    /// First virtio-mmio transport's SPI; transport `n` uses `VIRTIO_MMIO_BASE_IRQ + n`.
    pub const VIRTIO_MMIO_BASE_IRQ: u32 = 48;
    /// Purely virtual SPI raised in the peer by the doorbell hypercall.
    pub const DOORBELL: u32 = 40;
    /// INTA of PCI slot 0 on the root bus (QEMU `virt` routes INTA-D to SPIs 3-6). A function
    /// in slot `s` raises pin `p` (0 = INTA) on `PCIE_INTX_BASE + (s + p) % 4`: see
    /// [`crate::partition::intx`].
    pub const PCIE_INTX_BASE: u32 = 35;
    /// The SMMU's event-queue interrupt (edge; SPI 74).
    pub const SMMU_EVENTQ: u32 = 106;
    /// The SMMU's global-error interrupt (edge; SPI 77).
    pub const SMMU_GERROR: u32 = 109;
    /// Highest INTID the emulated distributor implements (GICD_TYPER.ITLinesNumber = 2 → 96).
    pub const MAX_SPI: u32 = 95;
}

/// Guest-physical layout shared by all guests.
pub mod ipa {
    /// Emulated GICv3 distributor.
    pub const GICD_BASE: u64 = super::phys::GICD_BASE;
    /// Emulated redistributors: a VM sees one frame per vCPU, packed from here.
    pub const GICR_BASE: u64 = super::phys::GICR_BASE;
    /// Emulated PL011 of each guest.
    pub const UART_BASE: u64 = super::phys::UART_BASE;
    /// Model file, read-only (guest-llm only).
    pub const MODEL_BASE: u64 = 0x2000_0000;
    /// Shared ring region (read/write in both guests).
    pub const SHARED_BASE: u64 = 0x3000_0000;
    /// Audit log (read-only in both guests).
    pub const AUDIT_BASE: u64 = 0x3010_0000;
    /// The filtered view of PCI configuration space a VM with PCI functions gets (bus 0 only,
    /// ECAM layout, every access trapped and emulated), where the machine's ECAM is.
    pub const PCI_ECAM_BASE: u64 = super::phys::PCIE_ECAM_BASE;
    /// Size of the view: one bus.
    pub const PCI_ECAM_SIZE: u64 = 0x10_0000;
    /// Guest RAM base: every guest's RAM starts here in its own address space.
    pub const RAM_BASE: u64 = 0x4000_0000;
    /// Where the hypervisor writes the [`crate::BootInfo`] block (first page of guest RAM).
    pub const BOOT_INFO: u64 = RAM_BASE;
    /// Link address of every guest kernel.
    pub const KERNEL_BASE: u64 = RAM_BASE + 0x8_0000;
}

const _: () = assert!(
    phys::PCIE_BAR_BASE >= phys::PCIE_MMIO_BASE
        && phys::PCIE_BAR_BASE + phys::PCIE_BAR_SIZE <= phys::PCIE_MMIO_BASE + phys::PCIE_MMIO_SIZE,
    "the BAR window must lie inside the PCIe memory window"
);

/// How the run script describes the files it places in the model region.
///
/// QEMU's loader copies raw files, so the guest cannot know their lengths from the region
/// alone. `scripts/run.sh` therefore also writes a 64-byte manifest into the last page of the
/// region: eight little-endian `u64` words `[MANIFEST_MAGIC, version (1), model offset, model
/// length, tokenizer offset, tokenizer length (0 = none), 0, 0]`, offsets from the region base.
pub mod model_region {
    /// Offset of the manifest from the model region base (the region's last 4 KiB page).
    pub const MANIFEST_OFFSET: u64 = super::phys::MODEL_SIZE - super::PAGE_SIZE;
    /// First manifest word ("SISMODL1").
    pub const MANIFEST_MAGIC: u64 = u64::from_le_bytes(*b"SISMODL1");
    /// Manifest layout version.
    pub const MANIFEST_VERSION: u64 = 1;
    /// Bytes of the manifest.
    pub const MANIFEST_SIZE: u64 = 64;
}

/// A guest kernel booted straight onto QEMU, without the hypervisor (`scripts/run.sh --native`,
/// the control run that measures what the hypervisor costs): RAM at [`ipa::RAM_BASE`] as on the
/// bare machine, and the model region inside that RAM, at the top of what such a boot assumes.
pub mod native {
    use super::{ipa, phys};

    /// RAM a native boot assumes when it cannot read the device tree (QEMU leaves none below an
    /// ELF kernel linked at [`ipa::KERNEL_BASE`]).
    pub const RAM_SIZE: u64 = 512 << 20;
    /// Where `run.sh --native` places the model region (files and manifest as in
    /// [`super::model_region`]): the top of [`RAM_SIZE`]. A native boot that finds the manifest
    /// magic in its last page hands the region to the guest and keeps its heap below it.
    pub const MODEL_BASE: u64 = ipa::RAM_BASE + RAM_SIZE - phys::MODEL_SIZE;
    /// Size of the native model region (the partition's).
    pub const MODEL_SIZE: u64 = phys::MODEL_SIZE;

    const _: () = assert!(
        MODEL_BASE >= ipa::KERNEL_BASE + (64 << 20),
        "the native model region must leave room for the kernel image and a heap"
    );
    const _: () = assert!(MODEL_BASE.is_multiple_of(super::BLOCK_2M));
}
