//! The SMMU stage-1 tables of one VM: device address (IOVA) = the VM's guest-physical address,
//! mapping the VM's RAM and nothing else, so a device can reach exactly the memory its owner
//! can (not the shared ring, the audit log, the model, another VM or the hypervisor).
//!
//! Built with the stage-2 builder's table tree ([`Stage2::map_leaf`]); the leaves carry
//! stage-1 attributes: normal write-back memory (MAIR index [`ATTR_NORMAL`]), inner shareable,
//! readable and writable at any privilege (`AP = 0b01`: PCIe transactions are unprivileged),
//! never executable, ASID-tagged (`nG`).

use sis_platform::partition::VmConfig;

use super::ste::ATTR_NORMAL;
use crate::stage2::{MapError, Stage2};

/// Leaf attribute bits (stage-1 block or page).
pub mod leaf {
    /// Valid.
    pub const VALID: u64 = 1 << 0;
    /// AttrIndx[2:0].
    pub const ATTR_SHIFT: u64 = 2;
    /// AP[2:1] = 0b01: read/write at any privilege.
    pub const AP_RW_ANY: u64 = 0b01 << 6;
    /// AP[2] (bit 7): read-only.
    pub const AP_RO: u64 = 0b10 << 6;
    /// Inner shareable.
    pub const SH_INNER: u64 = 0b11 << 8;
    /// Access flag.
    pub const AF: u64 = 1 << 10;
    /// Not global: the entry belongs to the context's ASID.
    pub const NG: u64 = 1 << 11;
    /// Privileged execute-never.
    pub const PXN: u64 = 1 << 53;
    /// Unprivileged execute-never.
    pub const UXN: u64 = 1 << 54;
}

/// The leaf bits of a VM's RAM in its device address space.
pub const RAM_LEAF: u64 = leaf::VALID
    | (ATTR_NORMAL << leaf::ATTR_SHIFT)
    | leaf::AP_RW_ANY
    | leaf::SH_INNER
    | leaf::AF
    | leaf::NG
    | leaf::PXN
    | leaf::UXN;

/// Builds `vm`'s device address space in `tables`: its RAM at its guest-physical address.
pub fn build(tables: &mut Stage2<'_>, vm: &VmConfig) -> Result<(), MapError> {
    tables.map_leaf(vm.ram.ipa, vm.ram.pa, vm.ram.size, RAM_LEAF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage2::Table;
    use sis_platform::layout::{ipa, phys};
    use sis_platform::partition::{PARTITIONS, VM_CTL, VM_LLM};
    extern crate std;
    use std::vec;

    #[test]
    fn maps_the_vms_ram_and_nothing_else() {
        let ctl = &PARTITIONS[VM_CTL];
        let mut pool = vec![Table::EMPTY; 4];
        let mut t = Stage2::new(&mut pool);
        build(&mut t, ctl).unwrap();
        // RAM is aligned: 2 MiB blocks, one level-2 table under the root.
        assert_eq!(t.tables_used(), 2);
        let (desc, size) = t.leaf(ipa::RAM_BASE + 0x1234).unwrap();
        let pa = t.translate(ipa::RAM_BASE + 0x1234).unwrap().pa;
        assert_eq!((pa, size), (ctl.ram.pa + 0x1234, 0x20_0000));
        assert_eq!(desc & !0x0000_FFFF_FFFF_F000, RAM_LEAF);
        assert_eq!(desc & leaf::AP_RO, 0, "writable");
        let last = ipa::RAM_BASE + ctl.ram.size - 8;
        assert_eq!(t.translate(last).unwrap().pa, ctl.ram.pa + ctl.ram.size - 8);
        // Nothing else: the end of RAM, the ring, the audit log, the model, the other VM's
        // RAM and the hypervisor as device addresses (the physical addresses too).
        let llm = &PARTITIONS[VM_LLM];
        for a in [
            ipa::RAM_BASE + ctl.ram.size,
            ipa::SHARED_BASE,
            ipa::AUDIT_BASE,
            ipa::MODEL_BASE,
            phys::SHARED_BASE,
            phys::AUDIT_BASE,
            llm.ram.pa,
            llm.ram.pa + llm.ram.size - 0x1000,
            ipa::PCI_ECAM_BASE,
            phys::PCIE_BAR_BASE,
            0,
            u64::from(u32::MAX),
        ] {
            assert_eq!(t.leaf(a), None, "{a:#x} must not be mapped");
        }
    }

    #[test]
    fn unaligned_ram_uses_pages() {
        let mut vm = PARTITIONS[VM_CTL];
        vm.ram.size = 0x20_3000;
        let mut pool = vec![Table::EMPTY; 4];
        let mut t = Stage2::new(&mut pool);
        build(&mut t, &vm).unwrap();
        assert_eq!(t.leaf(ipa::RAM_BASE + 0x20_2000).unwrap().1, 0x1000);
        assert_eq!(t.leaf(ipa::RAM_BASE + 0x20_3000), None);
    }
}
