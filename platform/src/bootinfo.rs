//! The boot-info block: what the hypervisor tells a guest about its partition.
//!
//! Written by the hypervisor at [`crate::layout::ipa::BOOT_INFO`] before a guest's first
//! instruction; the guest gets its address in `x0`. A guest started without the hypervisor finds
//! no valid magic there (QEMU leaves a DTB) and falls back to [`BootInfo::native`].

use crate::layout::{ipa, phys};
use crate::partition::{System, VmId};

/// Magic value identifying a valid boot-info block ("SISBOOT1").
pub const BOOT_INFO_MAGIC: u64 = u64::from_le_bytes(*b"SISBOOT1");

/// Per-guest boot information. `repr(C)`, only `u64` fields: the layout is the ABI.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootInfo {
    /// [`BOOT_INFO_MAGIC`].
    pub magic: u64,
    /// Index of this VM in the partition table.
    pub vm_id: u64,
    /// VM name, NUL padded.
    pub name: [u8; 16],
    /// Guest-physical RAM base.
    pub ram_base: u64,
    /// RAM size in bytes.
    pub ram_size: u64,
    /// Bit `n` set: physical core `n` (MPIDR Aff0 = n) belongs to this VM.
    pub cpu_mask: u64,
    /// MPIDR Aff0 of the core the VM boots on.
    pub boot_cpu: u64,
    /// Guest-physical base of the shared ring region (0 if none).
    pub shared_base: u64,
    /// Size of the shared ring region.
    pub shared_size: u64,
    /// Guest-physical base of the read-only audit log (0 if none).
    pub audit_base: u64,
    /// Size of the audit log.
    pub audit_size: u64,
    /// Guest-physical base of the read-only model region (0 if none).
    pub model_base: u64,
    /// Size of the model region.
    pub model_size: u64,
    /// CNTFRQ_EL0 as the hypervisor read it.
    pub timer_freq: u64,
    /// Guest-physical base of the VM's view of PCI configuration space (ECAM layout, bus 0,
    /// trapped and filtered by the hypervisor), 0 if the VM has no PCI functions. Its devices
    /// DMA through the SMMU to guest-physical addresses of its own RAM.
    pub pci_ecam_base: u64,
    /// Size of that view.
    pub pci_ecam_size: u64,
}

impl BootInfo {
    /// Whether the block was written by the hypervisor.
    pub fn is_valid(&self) -> bool {
        self.magic == BOOT_INFO_MAGIC
    }

    /// The VM's name as text.
    pub fn name(&self) -> &str {
        let end = self
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.name.len());
        core::str::from_utf8(&self.name[..end]).unwrap_or("?")
    }

    /// What the hypervisor tells VM `id` of `sys`, derived from the partition table: its RAM
    /// and cores, the ring of its first channel, the audit log and model if it maps them, and
    /// its PCI configuration view if it has PCI functions. `timer_freq` is `CNTFRQ_EL0`.
    pub fn for_vm(sys: &System, id: VmId, timer_freq: u64) -> Self {
        let cfg = &sys.vms[id];
        let mut name = [0u8; 16];
        let n = cfg.name.len().min(name.len());
        name[..n].copy_from_slice(&cfg.name.as_bytes()[..n]);
        let region = |pa: Option<u64>| {
            pa.and_then(|pa| cfg.region(pa))
                .map_or((0, 0), |m| (m.ipa, m.size))
        };
        let (shared_base, shared_size) = region(sys.channel_of(id).map(|c| c.region));
        let (audit_base, audit_size) = region(Some(phys::AUDIT_BASE));
        let (model_base, model_size) = region(Some(phys::MODEL_BASE));
        let (pci_ecam_base, pci_ecam_size) = if cfg.pci.is_empty() {
            (0, 0)
        } else {
            (ipa::PCI_ECAM_BASE, ipa::PCI_ECAM_SIZE)
        };
        BootInfo {
            magic: BOOT_INFO_MAGIC,
            vm_id: id as u64,
            name,
            ram_base: ipa::RAM_BASE,
            ram_size: cfg.ram.size,
            cpu_mask: cfg.cpu_mask(),
            boot_cpu: cfg.cores[0] as u64,
            shared_base,
            shared_size,
            audit_base,
            audit_size,
            model_base,
            model_size,
            timer_freq,
            pci_ecam_base,
            pci_ecam_size,
        }
    }

    /// What a guest assumes when it runs directly on QEMU without the hypervisor.
    pub fn native(ram_size: u64) -> Self {
        let mut name = [0u8; 16];
        name[..6].copy_from_slice(b"native");
        BootInfo {
            magic: BOOT_INFO_MAGIC,
            vm_id: 0,
            name,
            ram_base: ipa::RAM_BASE,
            ram_size,
            cpu_mask: 1,
            boot_cpu: 0,
            shared_base: 0,
            shared_size: 0,
            audit_base: 0,
            audit_size: 0,
            model_base: 0,
            model_size: 0,
            timer_freq: 0,
            pci_ecam_base: 0,
            pci_ecam_size: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_stable() {
        assert_eq!(core::mem::size_of::<BootInfo>(), 15 * 8 + 2 * 8);
        assert_eq!(core::mem::offset_of!(BootInfo, ram_base), 32);
    }

    #[test]
    fn derived_from_the_partition_table() {
        use crate::partition::{SYSTEM, VM_CTL, VM_LLM};
        let ctl = BootInfo::for_vm(&SYSTEM, VM_CTL, 62_500_000);
        assert_eq!((ctl.vm_id, ctl.name()), (0, "ctl"));
        assert_eq!((ctl.cpu_mask, ctl.boot_cpu), (0b1, 0));
        assert_eq!((ctl.ram_base, ctl.ram_size), (ipa::RAM_BASE, 64 << 20));
        assert_eq!(
            (ctl.shared_base, ctl.shared_size),
            (ipa::SHARED_BASE, 1 << 20)
        );
        assert_eq!((ctl.audit_base, ctl.audit_size), (ipa::AUDIT_BASE, 1 << 20));
        assert_eq!((ctl.model_base, ctl.model_size), (0, 0));
        assert_eq!(ctl.pci_ecam_base, ipa::PCI_ECAM_BASE);
        assert_eq!(ctl.timer_freq, 62_500_000);
        let llm = BootInfo::for_vm(&SYSTEM, VM_LLM, 1);
        assert_eq!((llm.cpu_mask, llm.boot_cpu), (0b1110, 1));
        assert_eq!(llm.shared_base, ipa::SHARED_BASE);
        assert_eq!(
            (llm.model_base, llm.model_size),
            (ipa::MODEL_BASE, phys::MODEL_SIZE)
        );
        assert_eq!((llm.pci_ecam_base, llm.pci_ecam_size), (0, 0));
    }

    #[test]
    fn name_stops_at_nul() {
        let b = BootInfo::native(1 << 20);
        assert_eq!(b.name(), "native");
        assert!(b.is_valid());
    }
}
