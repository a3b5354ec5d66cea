//! Stage-1 identity translation tables for a guest (pure logic: builds descriptors, no
//! hardware access).
//!
//! 4 KiB granule, 39-bit virtual addresses, so translation starts at level 1 (1 GiB per entry).
//!
//! - First GiB: a level-2 table of 2 MiB blocks: normal non-executable memory for the model,
//!   shared ring and audit log (from [`ipa::MODEL_BASE`] to the end of the audit log), device
//!   memory everywhere else (devices, PCI BARs, the PCI configuration view).
//! - Second GiB (where RAM starts): a level-2 table; the 2 MiB blocks holding the kernel image
//!   are split into 4 KiB pages by level-3 tables so that text is read-only executable, rodata
//!   read-only, and everything else read-write non-executable (W^X). The rest of RAM is
//!   read-write non-executable 2 MiB blocks; past the end of RAM, device memory.
//! - RAM beyond the second GiB: read-write non-executable 1 GiB blocks (rounded up).
//! - Everything else in the 512 GiB space is device memory: never accessed speculatively, and
//!   still mapped so that a deliberate access outside the guest's memory (the `peek` command)
//!   reaches the hypervisor's stage-2 check instead of faulting in the guest's own tables.

use sis_platform::layout::ipa;
use tock_registers::fields::FieldValue;
use tock_registers::LocalRegisterCopy;

pub use self::fields::*;

// tock-registers gives each register an undocumented `Register` type (and value enums).
#[allow(missing_docs)]
mod fields {
    use tock_registers::register_bitfields;

    register_bitfields! {u64,
        /// A VMSAv8-64 stage-1 block or table descriptor (levels 1 and 2).
        pub DESCRIPTOR [
            /// Descriptor is valid.
            VALID OFFSET(0) NUMBITS(1) [],
            /// Levels 1/2: 1 = next-level table, 0 = block. Level 3: must be 1 (page).
            TYPE OFFSET(1) NUMBITS(1) [Block = 0, Table = 1],
            /// Index into MAIR_EL1.
            ATTR_INDEX OFFSET(2) NUMBITS(3) [],
            /// Access permissions.
            AP OFFSET(6) NUMBITS(2) [RwEl1 = 0, RoEl1 = 2],
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
/// Bytes mapped by one level-3 entry.
pub const PAGE: u64 = 1 << 12;
/// Virtual address bits (TCR_EL1.T0SZ = 64 - this).
pub const VA_BITS: u64 = 39;
/// Level-1 index of the GiB that starts at [`ipa::RAM_BASE`].
pub const RAM_L1_INDEX: usize = (ipa::RAM_BASE / L1_BLOCK) as usize;
const _: () = assert!(
    ipa::RAM_BASE.is_multiple_of(L1_BLOCK),
    "RAM must start on a GiB boundary"
);

/// Memory type and rights of one block or page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Device-nGnRE, never executable.
    Device,
    /// Normal cacheable, read-only, executable at EL1 (kernel text).
    Code,
    /// Normal cacheable, read-only, never executable (kernel rodata).
    ReadOnly,
    /// Normal cacheable, read-write, never executable (data, bss, stacks, heap, shared regions).
    Data,
}

/// Where the kernel image's sections are (all 4 KiB aligned, inside the GiB at RAM base).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Image {
    /// First byte of text.
    pub start: u64,
    /// End of text, start of rodata.
    pub text_end: u64,
    /// End of rodata, start of data.
    pub rodata_end: u64,
    /// End of everything the image uses (bss, stacks, page tables).
    pub end: u64,
}

impl Image {
    /// Level-3 tables needed: one per 2 MiB block from RAM base to the image end.
    pub fn l3_tables(&self) -> usize {
        (self.end - ipa::RAM_BASE).div_ceil(L2_BLOCK) as usize
    }

    /// Kind of the 4 KiB page at `pa`.
    pub fn page_kind(&self, pa: u64) -> Kind {
        if (self.start..self.text_end).contains(&pa) {
            Kind::Code
        } else if (self.text_end..self.rodata_end).contains(&pa) {
            Kind::ReadOnly
        } else {
            Kind::Data
        }
    }
}

fn descriptor(pa: u64, kind: Kind, page: bool) -> u64 {
    let mut d = LocalRegisterCopy::<u64, DESCRIPTOR::Register>::new(0);
    let base: FieldValue<u64, DESCRIPTOR::Register> = DESCRIPTOR::VALID::SET
        + if page {
            DESCRIPTOR::TYPE::Table
        } else {
            DESCRIPTOR::TYPE::Block
        }
        + DESCRIPTOR::AF::SET
        + DESCRIPTOR::ADDR.val(pa >> 12)
        + DESCRIPTOR::UXN::SET;
    d.write(base);
    let normal = DESCRIPTOR::ATTR_INDEX.val(ATTR_NORMAL) + DESCRIPTOR::SH::InnerShareable;
    match kind {
        Kind::Device => d.modify(
            DESCRIPTOR::ATTR_INDEX.val(ATTR_DEVICE)
                + DESCRIPTOR::SH::NonShareable
                + DESCRIPTOR::AP::RwEl1
                + DESCRIPTOR::PXN::SET,
        ),
        Kind::Code => d.modify(normal + DESCRIPTOR::AP::RoEl1),
        Kind::ReadOnly => d.modify(normal + DESCRIPTOR::AP::RoEl1 + DESCRIPTOR::PXN::SET),
        Kind::Data => d.modify(normal + DESCRIPTOR::AP::RwEl1 + DESCRIPTOR::PXN::SET),
    }
    d.get()
}

/// A level-1/2 block descriptor mapping `pa` (aligned to the block size of its level) as `kind`.
pub fn block(pa: u64, kind: Kind) -> u64 {
    descriptor(pa, kind, false)
}

/// A level-3 page descriptor mapping the 4 KiB page at `pa` as `kind`.
pub fn page(pa: u64, kind: Kind) -> u64 {
    descriptor(pa, kind, true)
}

/// A table descriptor pointing at the next-level table at `pa` (4 KiB aligned).
pub fn table(pa: u64) -> u64 {
    let mut d = LocalRegisterCopy::<u64, DESCRIPTOR::Register>::new(0);
    d.write(DESCRIPTOR::VALID::SET + DESCRIPTOR::TYPE::Table + DESCRIPTOR::ADDR.val(pa >> 12));
    d.get()
}

/// End of the normal memory in the first GiB (model, shared ring, audit log).
const LOW_MEMORY_END: u64 = ipa::AUDIT_BASE + sis_platform::layout::phys::AUDIT_SIZE;
const _: () = assert!(
    ipa::MODEL_BASE < ipa::SHARED_BASE && ipa::SHARED_BASE < ipa::AUDIT_BASE,
    "the model, shared ring and audit log are in this order"
);

/// Kind of the 2 MiB block at `pa` inside the first GiB.
pub fn low_kind(pa: u64) -> Kind {
    if (ipa::MODEL_BASE..LOW_MEMORY_END).contains(&pa) {
        Kind::Data
    } else {
        Kind::Device
    }
}

/// Kind of the block at `pa` (at or above RAM base) for RAM of `ram_size` bytes: RAM is data,
/// anything past it device memory. A block partly inside RAM counts as RAM.
pub fn ram_kind(pa: u64, ram_size: u64) -> Kind {
    if pa >= ipa::RAM_BASE && pa - ipa::RAM_BASE < ram_size {
        Kind::Data
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

/// Fills level-3 table `n` (covering RAM base + n * 2 MiB) with the image's pages.
pub fn fill_l3(l3: &mut [u64; ENTRIES], n: usize, image: &Image) {
    let base = ipa::RAM_BASE + n as u64 * L2_BLOCK;
    for (i, e) in l3.iter_mut().enumerate() {
        let pa = base + i as u64 * PAGE;
        *e = page(pa, image.page_kind(pa));
    }
}

/// The entry `i` of the level-2 table of the RAM GiB: a table for the image's blocks (their
/// level-3 tables at `l3_pas`), else a RAM or device block.
pub fn ram_l2_entry(i: usize, l3_pas: &[u64], ram_size: u64) -> u64 {
    match l3_pas.get(i) {
        Some(&pa) => table(pa),
        None => {
            let pa = ipa::RAM_BASE + i as u64 * L2_BLOCK;
            block(pa, ram_kind(pa, ram_size))
        }
    }
}

/// The level-1 entry `i` (not the first GiB nor the RAM GiB, which are tables).
pub fn top_entry(i: usize, ram_size: u64) -> u64 {
    let pa = i as u64 * L1_BLOCK;
    block(pa, ram_kind(pa, ram_size))
}

/// Fills the level-1 table: entry 0 and the RAM GiB point at level-2 tables, the rest are
/// blocks.
pub fn fill_top(l1: &mut [u64; ENTRIES], l2_low_pa: u64, l2_ram_pa: u64, ram_size: u64) {
    for (i, e) in l1.iter_mut().enumerate() {
        *e = match i {
            0 => table(l2_low_pa),
            RAM_L1_INDEX => table(l2_ram_pa),
            _ => top_entry(i, ram_size),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMG: Image = Image {
        start: 0x4008_0000,
        text_end: 0x4009_0000,
        rodata_end: 0x4009_4000,
        end: 0x4021_0000,
    };

    #[test]
    fn device_block_bits() {
        // valid, block, AttrIndx 0, AF, PXN+UXN, non-shareable, RW.
        assert_eq!(
            block(0x0800_0000, Kind::Device),
            0x0800_0000 | 1 | (1 << 10) | (3 << 53)
        );
    }

    #[test]
    fn data_code_and_readonly_bits() {
        // valid, block, AttrIndx 1, inner shareable, AF, PXN+UXN, RW.
        let data = 0x4000_0000 | 1 | (1 << 2) | (3 << 8) | (1 << 10) | (3 << 53);
        assert_eq!(block(0x4000_0000, Kind::Data), data);
        // Code: read-only (AP[2] = bit 7), executable at EL1 (no PXN).
        assert_eq!(
            block(0x4000_0000, Kind::Code),
            (data | (1 << 7)) & !(1 << 53)
        );
        assert_eq!(block(0x4000_0000, Kind::ReadOnly), data | (1 << 7));
        // A level-3 page sets bit 1.
        assert_eq!(
            page(0x4008_1000, Kind::Code),
            (block(0x4008_1000, Kind::Code)) | 2
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
        let uart = (ipa::UART_BASE / L2_BLOCK) as usize;
        assert_eq!(l2[uart], block(uart as u64 * L2_BLOCK, Kind::Device));
        let model = (ipa::MODEL_BASE / L2_BLOCK) as usize;
        assert_eq!(l2[model - 1] & (7 << 2), ATTR_DEVICE << 2);
        assert_eq!(l2[model], block(ipa::MODEL_BASE, Kind::Data));
        let shared = (ipa::SHARED_BASE / L2_BLOCK) as usize;
        assert_eq!(low_kind(shared as u64 * L2_BLOCK), Kind::Data);
        assert_eq!(low_kind(ipa::AUDIT_BASE), Kind::Data);
        // The PCI configuration view and everything else up to RAM: device memory.
        let ecam = (ipa::PCI_ECAM_BASE / L2_BLOCK) as usize;
        assert_eq!(l2[ecam], block(ipa::PCI_ECAM_BASE, Kind::Device));
        assert_eq!(
            l2[ENTRIES - 1],
            block(ipa::RAM_BASE - L2_BLOCK, Kind::Device)
        );
        assert_eq!(low_kind(ipa::AUDIT_BASE + L2_BLOCK), Kind::Device);
    }

    #[test]
    fn image_pages_are_w_xor_x() {
        assert_eq!(IMG.l3_tables(), 2);
        let mut l3 = [0; ENTRIES];
        fill_l3(&mut l3, 0, &IMG);
        let idx = |pa: u64| ((pa - ipa::RAM_BASE) / PAGE) as usize;
        // Boot info page and the gap below the kernel: data.
        assert_eq!(l3[0], page(ipa::RAM_BASE, Kind::Data));
        assert_eq!(l3[idx(0x4007_f000)], page(0x4007_f000, Kind::Data));
        assert_eq!(l3[idx(0x4008_0000)], page(0x4008_0000, Kind::Code));
        assert_eq!(l3[idx(0x4008_f000)], page(0x4008_f000, Kind::Code));
        assert_eq!(l3[idx(0x4009_0000)], page(0x4009_0000, Kind::ReadOnly));
        assert_eq!(l3[idx(0x4009_3000)], page(0x4009_3000, Kind::ReadOnly));
        assert_eq!(l3[idx(0x4009_4000)], page(0x4009_4000, Kind::Data));
        for e in l3 {
            let writable = e & (1 << 7) == 0;
            let executable = e & (1 << 53) == 0;
            assert!(
                !(writable && executable),
                "{e:#x} is writable and executable"
            );
        }
        let mut second = [0; ENTRIES];
        fill_l3(&mut second, 1, &IMG);
        assert_eq!(second[0], page(0x4020_0000, Kind::Data));
    }

    #[test]
    fn ram_gib_and_beyond() {
        let l3 = [0x4100_0000, 0x4100_1000];
        let ram = 64 << 20;
        assert_eq!(ram_l2_entry(0, &l3, ram), table(0x4100_0000));
        assert_eq!(ram_l2_entry(1, &l3, ram), table(0x4100_1000));
        assert_eq!(ram_l2_entry(2, &l3, ram), block(0x4040_0000, Kind::Data));
        assert_eq!(ram_l2_entry(31, &l3, ram), block(0x43e0_0000, Kind::Data));
        assert_eq!(ram_l2_entry(32, &l3, ram), block(0x4400_0000, Kind::Device));
        let mut l1 = [0; ENTRIES];
        fill_top(&mut l1, 0x4100_2000, 0x4100_3000, (1 << 30) + (1 << 20));
        assert_eq!(l1[0], table(0x4100_2000));
        assert_eq!(l1[RAM_L1_INDEX], table(0x4100_3000));
        assert_eq!(l1[2], block(0x8000_0000, Kind::Data));
        assert_eq!(l1[3], block(0xC000_0000, Kind::Device));
        assert_eq!(
            l1[ENTRIES - 1],
            block((ENTRIES as u64 - 1) << 30, Kind::Device)
        );
        let mut small = [0; ENTRIES];
        fill_top(&mut small, 0x4100_2000, 0x4100_3000, 64 << 20);
        assert_eq!(small[2], block(0x8000_0000, Kind::Device));
    }
}
