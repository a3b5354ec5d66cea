//! Stage-1 identity translation tables for a guest (pure logic: builds descriptors, no
//! hardware access).
//!
//! 4 KiB granule, 39-bit virtual addresses, so translation starts at level 1 (1 GiB per entry).
//! The first GiB is split by a level-2 table into 2 MiB blocks: device memory below
//! [`ipa::MODEL_BASE`], normal non-executable memory from there to [`ipa::RAM_BASE`] (model,
//! shared ring, audit log). Guest RAM is normal write-back executable memory in 1 GiB blocks.
//! Everything else in the 512 GiB space is device memory: never accessed speculatively, and still
//! mapped so that a deliberate access outside the guest's memory (the `peek` command) reaches the
//! hypervisor's stage-2 check instead of faulting in the guest's own tables.

use sis_platform::layout::ipa;
use tock_registers::fields::FieldValue;
use tock_registers::register_bitfields;
use tock_registers::LocalRegisterCopy;

register_bitfields! {u64,
    /// A VMSAv8-64 stage-1 block or table descriptor (levels 1 and 2).
    pub DESCRIPTOR [
        /// Descriptor is valid.
        VALID OFFSET(0) NUMBITS(1) [],
        /// Level 1/2: 1 = next-level table, 0 = block.
        TYPE OFFSET(1) NUMBITS(1) [Block = 0, Table = 1],
        /// Index into MAIR_EL1.
        ATTR_INDEX OFFSET(2) NUMBITS(3) [],
        /// Access permissions.
        AP OFFSET(6) NUMBITS(2) [RwEl1 = 0],
        /// Shareability.
        SH OFFSET(8) NUMBITS(2) [NonShareable = 0, InnerShareable = 3],
        /// Access flag (set, so no access-flag faults).
        AF OFFSET(10) NUMBITS(1) [],
        /// Output address bits [47:12] (block addresses are further aligned by level).
        ADDR OFFSET(12) NUMBITS(36) [],
        /// Privileged execute never.
        PXN OFFSET(53) NUMBITS(1) [],
        /// Unprivileged execute never.
        UXN OFFSET(54) NUMBITS(1) [],
    ]
}

/// MAIR_EL1 index of Device-nGnRE.
pub const ATTR_DEVICE: u64 = 0;
/// MAIR_EL1 index of Normal inner/outer write-back read/write-allocate.
pub const ATTR_NORMAL: u64 = 1;

/// Entries per table (4 KiB / 8 bytes).
pub const ENTRIES: usize = 512;
/// Bytes mapped by one level-1 entry.
pub const L1_BLOCK: u64 = 1 << 30;
/// Bytes mapped by one level-2 entry.
pub const L2_BLOCK: u64 = 1 << 21;
/// Virtual address bits (TCR_EL1.T0SZ = 64 - this).
pub const VA_BITS: u64 = 39;

/// Memory type of one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Device-nGnRE, never executable.
    Device,
    /// Normal cacheable, executable at EL1 (guest RAM).
    Ram,
    /// Normal cacheable, never executable (model, shared ring, audit log).
    Data,
}

/// A block descriptor mapping `pa` (aligned to the block size of its level) as `kind`.
pub fn block(pa: u64, kind: Kind) -> u64 {
    let mut d = LocalRegisterCopy::<u64, DESCRIPTOR::Register>::new(0);
    let base: FieldValue<u64, DESCRIPTOR::Register> = DESCRIPTOR::VALID::SET
        + DESCRIPTOR::TYPE::Block
        + DESCRIPTOR::AP::RwEl1
        + DESCRIPTOR::AF::SET
        + DESCRIPTOR::ADDR.val(pa >> 12)
        + DESCRIPTOR::UXN::SET;
    d.write(base);
    match kind {
        Kind::Device => d.modify(
            DESCRIPTOR::ATTR_INDEX.val(ATTR_DEVICE)
                + DESCRIPTOR::SH::NonShareable
                + DESCRIPTOR::PXN::SET,
        ),
        Kind::Ram => {
            d.modify(DESCRIPTOR::ATTR_INDEX.val(ATTR_NORMAL) + DESCRIPTOR::SH::InnerShareable)
        }
        Kind::Data => d.modify(
            DESCRIPTOR::ATTR_INDEX.val(ATTR_NORMAL)
                + DESCRIPTOR::SH::InnerShareable
                + DESCRIPTOR::PXN::SET,
        ),
    }
    d.get()
}

/// A table descriptor pointing at the next-level table at `pa` (4 KiB aligned).
pub fn table(pa: u64) -> u64 {
    let mut d = LocalRegisterCopy::<u64, DESCRIPTOR::Register>::new(0);
    d.write(DESCRIPTOR::VALID::SET + DESCRIPTOR::TYPE::Table + DESCRIPTOR::ADDR.val(pa >> 12));
    d.get()
}

/// Kind of the 2 MiB block at `pa` inside the first GiB.
pub fn low_kind(pa: u64) -> Kind {
    if (ipa::MODEL_BASE..ipa::RAM_BASE).contains(&pa) {
        Kind::Data
    } else {
        Kind::Device
    }
}

/// Kind of the 1 GiB block at `pa` (at or above 1 GiB) for RAM `[ram_base, ram_base+ram_size)`.
pub fn high_kind(pa: u64, ram_base: u64, ram_size: u64) -> Kind {
    // RAM is mapped in whole GiB blocks: the last block is rounded up.
    if pa >= ram_base && pa - ram_base < ram_size {
        Kind::Ram
    } else {
        Kind::Device
    }
}

/// Fills the level-2 table of the first GiB.
pub fn fill_low(l2: &mut [u64; ENTRIES]) {
    for (i, e) in l2.iter_mut().enumerate() {
        let pa = i as u64 * L2_BLOCK;
        *e = block(pa, low_kind(pa));
    }
}

/// Fills the level-1 table: entry 0 points at the level-2 table at `l2_pa`, the rest are blocks.
pub fn fill_top(l1: &mut [u64; ENTRIES], l2_pa: u64, ram_base: u64, ram_size: u64) {
    l1[0] = table(l2_pa);
    for (i, e) in l1.iter_mut().enumerate().skip(1) {
        let pa = i as u64 * L1_BLOCK;
        *e = block(pa, high_kind(pa, ram_base, ram_size));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_block_bits() {
        // valid, block, AttrIndx 0, AF, PXN+UXN, non-shareable.
        assert_eq!(
            block(0x0800_0000, Kind::Device),
            0x0800_0000 | 1 | (1 << 10) | (3 << 53)
        );
    }

    #[test]
    fn ram_block_bits() {
        // valid, block, AttrIndx 1, inner shareable, AF, UXN only (EL1 may execute).
        assert_eq!(
            block(0x4000_0000, Kind::Ram),
            0x4000_0000 | 1 | (1 << 2) | (3 << 8) | (1 << 10) | (1 << 54)
        );
        assert_eq!(
            block(0x2000_0000, Kind::Data),
            block(0x2000_0000, Kind::Ram) | (1 << 53)
        );
    }

    #[test]
    fn table_bits() {
        assert_eq!(table(0x4009_3000), 0x4009_3000 | 3);
    }

    #[test]
    fn first_gib_split() {
        let mut l2 = [0; ENTRIES];
        fill_low(&mut l2);
        assert_eq!(l2[0], block(0, Kind::Device));
        let uart = (sis_platform::layout::ipa::UART_BASE / L2_BLOCK) as usize;
        assert_eq!(l2[uart], block(uart as u64 * L2_BLOCK, Kind::Device));
        let model = (ipa::MODEL_BASE / L2_BLOCK) as usize;
        assert_eq!(l2[model - 1] & (7 << 2), ATTR_DEVICE << 2);
        assert_eq!(l2[model], block(ipa::MODEL_BASE, Kind::Data));
        assert_eq!(l2[ENTRIES - 1], block(ipa::RAM_BASE - L2_BLOCK, Kind::Data));
        let shared = (ipa::SHARED_BASE / L2_BLOCK) as usize;
        assert_eq!(low_kind(shared as u64 * L2_BLOCK), Kind::Data);
    }

    #[test]
    fn ram_rounded_up_to_gib_and_rest_device() {
        let mut l1 = [0; ENTRIES];
        fill_top(&mut l1, 0x4010_0000, ipa::RAM_BASE, 0x4000_0000 + 0x10_0000);
        assert_eq!(l1[0], table(0x4010_0000));
        assert_eq!(l1[1], block(0x4000_0000, Kind::Ram));
        assert_eq!(l1[2], block(0x8000_0000, Kind::Ram));
        assert_eq!(l1[3], block(0xC000_0000, Kind::Device));
        assert_eq!(
            l1[ENTRIES - 1],
            block((ENTRIES as u64 - 1) << 30, Kind::Device)
        );
        let mut small = [0; ENTRIES];
        fill_top(&mut small, 0x4010_0000, ipa::RAM_BASE, 64 << 20);
        assert_eq!(small[1], block(0x4000_0000, Kind::Ram));
        assert_eq!(small[2], block(0x8000_0000, Kind::Device));
    }
}
