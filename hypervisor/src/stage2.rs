//! Stage-2 translation tables (4 KiB granule, 32-bit IPA space starting at level 1).
//!
//! A [`Stage2`] builds one VM's tables in a fixed pool of pages: 2 MiB blocks where a range is
//! aligned, 4 KiB pages elsewhere. Normal memory is inner-shareable write-back; device memory is
//! Device-nGnRE. Only the VM's own RAM is executable: shared regions (ring, audit log, model) and
//! devices are execute-never. Anything not mapped faults to the hypervisor.

use sis_platform::partition::{Access, Mapping, VmConfig};

/// Bits of IPA the tables translate (VTCR_EL2.T0SZ = 64 - IPA_BITS).
pub const IPA_BITS: u64 = 32;
const ENTRIES: usize = 512;
const L1_SHIFT: u64 = 30;
const L2_SHIFT: u64 = 21;
const L3_SHIFT: u64 = 12;
const BLOCK_2M: u64 = 1 << L2_SHIFT;
const PAGE: u64 = 1 << L3_SHIFT;

/// Descriptor bits (stage-2 format).
mod desc {
    pub const VALID: u64 = 1 << 0;
    /// Table (levels 1-2) or page (level 3).
    pub const TABLE_OR_PAGE: u64 = 1 << 1;
    /// MemAttr[3:0] = 0b1111: Normal, outer and inner write-back cacheable.
    pub const ATTR_NORMAL_WB: u64 = 0b1111 << 2;
    /// MemAttr[3:0] = 0b0001: Device-nGnRE.
    pub const ATTR_DEVICE: u64 = 0b0001 << 2;
    /// S2AP = 0b01: read-only.
    pub const S2AP_RO: u64 = 0b01 << 6;
    /// S2AP = 0b11: read/write.
    pub const S2AP_RW: u64 = 0b11 << 6;
    /// Inner shareable.
    pub const SH_INNER: u64 = 0b11 << 8;
    /// Access flag.
    pub const AF: u64 = 1 << 10;
    /// Execute never (XN[1:0] = 0b10).
    pub const XN: u64 = 0b10 << 53;
    /// Output address bits [47:12].
    pub const ADDR_MASK: u64 = 0x0000_FFFF_FFFF_F000;
}

/// Kind of memory a mapping has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemKind {
    /// The VM's own RAM (normal, cacheable, executable).
    Normal,
    /// Normal cacheable memory the VM may not execute (shared ring, audit log, model).
    Data,
    /// MMIO (device, non-executable).
    Device,
}

/// A 4 KiB translation table.
#[derive(Clone, Copy)]
#[repr(C, align(4096))]
pub struct Table(pub [u64; ENTRIES]);

impl Table {
    /// An empty table.
    pub const EMPTY: Table = Table([0; ENTRIES]);
}

/// Why a mapping could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Not 4 KiB aligned, or empty.
    Unaligned,
    /// Beyond the IPA space.
    OutOfRange,
    /// The table pool is exhausted.
    NoTables,
    /// Part of the range is already mapped.
    AlreadyMapped,
}

/// One VM's stage-2 tables, built in a borrowed pool; table 0 is the level-1 root.
pub struct Stage2<'a> {
    pool: &'a mut [Table],
    used: usize,
}

/// Result of a software walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Output (host-physical) address.
    pub pa: u64,
    /// Writable.
    pub writable: bool,
    /// Device memory.
    pub device: bool,
    /// The VM may execute it.
    pub executable: bool,
    /// Size of the block or page that maps it.
    pub size: u64,
}

impl<'a> Stage2<'a> {
    /// Starts empty tables in `pool` (at least one table).
    pub fn new(pool: &'a mut [Table]) -> Self {
        assert!(!pool.is_empty(), "stage-2 pool needs a root table");
        pool[0] = Table::EMPTY;
        Stage2 { pool, used: 1 }
    }

    /// Address of the root table (for VTTBR_EL2; identity-mapped hypervisor, so VA = PA).
    pub fn root_addr(&self) -> u64 {
        self.pool.as_ptr() as u64
    }

    /// Tables used so far.
    pub fn tables_used(&self) -> usize {
        self.used
    }

    fn table_addr(&self, idx: usize) -> u64 {
        self.pool.as_ptr() as u64 + (idx * core::mem::size_of::<Table>()) as u64
    }

    fn table_index(&self, addr: u64) -> usize {
        ((addr - self.pool.as_ptr() as u64) / core::mem::size_of::<Table>() as u64) as usize
    }

    /// The next-level table of entry `i` in table `t`, creating it if needed.
    fn next(&mut self, t: usize, i: usize) -> Result<usize, MapError> {
        let e = self.pool[t].0[i];
        if e & desc::VALID != 0 {
            if e & desc::TABLE_OR_PAGE == 0 {
                return Err(MapError::AlreadyMapped);
            }
            return Ok(self.table_index(e & desc::ADDR_MASK));
        }
        if self.used == self.pool.len() {
            return Err(MapError::NoTables);
        }
        let n = self.used;
        self.used += 1;
        self.pool[n] = Table::EMPTY;
        self.pool[t].0[i] = self.table_addr(n) | desc::VALID | desc::TABLE_OR_PAGE;
        Ok(n)
    }

    fn leaf_bits(kind: MemKind, access: Access) -> u64 {
        let attr = match kind {
            MemKind::Normal => desc::ATTR_NORMAL_WB | desc::SH_INNER,
            MemKind::Data => desc::ATTR_NORMAL_WB | desc::SH_INNER | desc::XN,
            MemKind::Device => desc::ATTR_DEVICE | desc::XN,
        };
        let ap = match access {
            Access::ReadOnly => desc::S2AP_RO,
            Access::ReadWrite => desc::S2AP_RW,
        };
        attr | ap | desc::AF | desc::VALID
    }

    /// Maps `[ipa, ipa + size)` to `[pa, pa + size)`.
    pub fn map(
        &mut self,
        ipa: u64,
        pa: u64,
        size: u64,
        kind: MemKind,
        access: Access,
    ) -> Result<(), MapError> {
        self.map_leaf(ipa, pa, size, Self::leaf_bits(kind, access))
    }

    /// Maps `[addr, addr + size)` to `[pa, pa + size)` with leaf descriptors carrying the
    /// attribute bits `attrs` (valid bit included; the address and the page bit are added here).
    /// The table layout is the same for the hypervisor's own stage-1 map, which supplies its
    /// stage-1 attributes through this (see `el2map.rs`).
    pub fn map_leaf(&mut self, addr: u64, pa: u64, size: u64, attrs: u64) -> Result<(), MapError> {
        if size == 0
            || !addr.is_multiple_of(PAGE)
            || !pa.is_multiple_of(PAGE)
            || !size.is_multiple_of(PAGE)
        {
            return Err(MapError::Unaligned);
        }
        let end = addr.checked_add(size).ok_or(MapError::OutOfRange)?;
        if end > 1 << IPA_BITS {
            return Err(MapError::OutOfRange);
        }
        let bits = attrs & !desc::ADDR_MASK & !desc::TABLE_OR_PAGE;
        let (mut ipa, mut pa) = (addr, pa);
        while ipa < end {
            let l1 = ((ipa >> L1_SHIFT) & 0x1FF) as usize;
            let t2 = self.next(0, l1)?;
            let l2 = ((ipa >> L2_SHIFT) & 0x1FF) as usize;
            if ipa % BLOCK_2M == 0 && pa % BLOCK_2M == 0 && end - ipa >= BLOCK_2M {
                if self.pool[t2].0[l2] & desc::VALID != 0 {
                    return Err(MapError::AlreadyMapped);
                }
                self.pool[t2].0[l2] = (pa & desc::ADDR_MASK) | bits;
                ipa += BLOCK_2M;
                pa += BLOCK_2M;
                continue;
            }
            let t3 = self.next(t2, l2)?;
            let l3 = ((ipa >> L3_SHIFT) & 0x1FF) as usize;
            if self.pool[t3].0[l3] & desc::VALID != 0 {
                return Err(MapError::AlreadyMapped);
            }
            self.pool[t3].0[l3] = (pa & desc::ADDR_MASK) | bits | desc::TABLE_OR_PAGE;
            ipa += PAGE;
            pa += PAGE;
        }
        Ok(())
    }

    /// The leaf descriptor mapping `addr` and the size it maps, walking as the MMU would.
    pub fn leaf(&self, addr: u64) -> Option<(u64, u64)> {
        if addr >= 1 << IPA_BITS {
            return None;
        }
        let mut t = 0;
        for (level, shift) in [(1, L1_SHIFT), (2, L2_SHIFT), (3, L3_SHIFT)] {
            let e = *self
                .pool
                .get(t)?
                .0
                .get(((addr >> shift) & 0x1FF) as usize)?;
            if e & desc::VALID == 0 {
                return None;
            }
            if level == 3 || e & desc::TABLE_OR_PAGE == 0 {
                return Some((e, 1u64 << shift));
            }
            t = self.table_index(e & desc::ADDR_MASK);
        }
        None
    }

    /// Every leaf as (address, size, descriptor), in address order.
    pub fn leaves(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        let entries = |t: usize| {
            self.pool
                .get(t)
                .into_iter()
                .flat_map(|tab| tab.0.iter().copied().enumerate())
                .filter(|&(_, e)| e & desc::VALID != 0)
        };
        let table = move |e: u64| self.table_index(e & desc::ADDR_MASK);
        entries(0).flat_map(move |(i1, e1)| {
            let a1 = (i1 as u64) << L1_SHIFT;
            let l1_leaf = (e1 & desc::TABLE_OR_PAGE == 0).then_some((a1, 1u64 << L1_SHIFT, e1));
            let l2 = (e1 & desc::TABLE_OR_PAGE != 0)
                .then(|| entries(table(e1)))
                .into_iter()
                .flatten()
                .flat_map(move |(i2, e2)| {
                    let a2 = a1 + ((i2 as u64) << L2_SHIFT);
                    let l2_leaf =
                        (e2 & desc::TABLE_OR_PAGE == 0).then_some((a2, 1u64 << L2_SHIFT, e2));
                    let l3 = (e2 & desc::TABLE_OR_PAGE != 0)
                        .then(|| entries(table(e2)))
                        .into_iter()
                        .flatten()
                        .map(move |(i3, e3)| (a2 + ((i3 as u64) << L3_SHIFT), PAGE, e3));
                    l2_leaf.into_iter().chain(l3)
                });
            l1_leaf.into_iter().chain(l2)
        })
    }

    /// Maps a VM's partition: its RAM (the only executable memory), its shared regions
    /// (execute-never) and its pass-through device pages. On failure, the IPA that could not be
    /// mapped.
    pub fn map_partition(&mut self, vm: &VmConfig) -> Result<(), (u64, MapError)> {
        let mut map = |m: &Mapping, kind| {
            self.map(m.ipa, m.pa, m.size, kind, m.access)
                .map_err(|e| (m.ipa, e))
        };
        map(&vm.ram, MemKind::Normal)?;
        for m in vm.regions {
            map(m, MemKind::Data)?;
        }
        for m in vm.devices {
            map(m, MemKind::Device)?;
        }
        Ok(())
    }

    /// Walks the tables in software, as the MMU would.
    pub fn translate(&self, ipa: u64) -> Option<Translation> {
        let (e, size) = self.leaf(ipa)?;
        Some(Translation {
            pa: (e & desc::ADDR_MASK & !(size - 1)) | (ipa & (size - 1)),
            writable: e & desc::S2AP_RW == desc::S2AP_RW,
            device: e & (0b1111 << 2) == desc::ATTR_DEVICE,
            executable: e & desc::XN == 0,
            size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec;

    #[test]
    fn maps_blocks_and_pages() {
        let mut pool = vec![Table::EMPTY; 8];
        let mut s2 = Stage2::new(&mut pool);
        s2.map(
            0x4000_0000,
            0x4400_0000,
            0x0400_0000,
            MemKind::Normal,
            Access::ReadWrite,
        )
        .unwrap();
        s2.map(
            0x3010_0000,
            0x4810_0000,
            0x10_0000,
            MemKind::Data,
            Access::ReadOnly,
        )
        .unwrap();
        s2.map(
            0x0a00_0000,
            0x0a00_0000,
            0x1000,
            MemKind::Device,
            Access::ReadWrite,
        )
        .unwrap();
        let t = s2.translate(0x4000_1234).unwrap();
        assert_eq!(
            t,
            Translation {
                pa: 0x4400_1234,
                writable: true,
                device: false,
                executable: true,
                size: 0x20_0000
            }
        );
        let t = s2.translate(0x43ff_fff8).unwrap();
        assert_eq!(t.pa, 0x47ff_fff8);
        let t = s2.translate(0x3010_0008).unwrap();
        assert_eq!(
            t,
            Translation {
                pa: 0x4810_0008,
                writable: false,
                device: false,
                executable: false,
                size: 0x1000
            }
        );
        assert!(s2.translate(0x3020_0000).is_none(), "past the audit region");
        let t = s2.translate(0x0a00_0010).unwrap();
        assert!(t.device && !t.executable);
        assert!(s2.translate(0x4400_0000).is_none(), "past the RAM");
        assert!(
            s2.translate(0x5000_0000).is_none(),
            "another VM's RAM is not mapped"
        );
        assert!(s2.translate(0x0900_0000).is_none(), "emulated UART traps");
        assert!(s2.tables_used() <= 5, "{}", s2.tables_used());
    }

    /// The real partition table: each VM executes only its own RAM; the ring, audit log, model
    /// and device pages are mapped execute-never; the emulated devices and the other VM's RAM are
    /// not mapped.
    #[test]
    fn partitions_execute_only_their_own_ram() {
        use sis_platform::layout::ipa;
        use sis_platform::partition::PARTITIONS;
        for vm in PARTITIONS.iter() {
            let mut pool = vec![Table::EMPTY; 16];
            let mut s2 = Stage2::new(&mut pool);
            s2.map_partition(vm).unwrap();
            for a in (0..vm.ram.size).step_by(0x10_0000) {
                let t = s2.translate(vm.ram.ipa + a).unwrap();
                assert!(
                    t.executable && t.writable && !t.device,
                    "{} RAM +{a:#x}",
                    vm.name
                );
                assert_eq!(t.pa, vm.ram.pa + a);
            }
            for m in vm.regions.iter().chain(vm.devices) {
                for a in (0..m.size).step_by(0x1000) {
                    let t = s2.translate(m.ipa + a).unwrap();
                    assert!(!t.executable, "{} {:#x} executable", vm.name, m.ipa + a);
                }
            }
            for addr in [ipa::GICD_BASE, ipa::GICR_BASE, ipa::UART_BASE] {
                assert!(s2.translate(addr).is_none(), "{} maps {addr:#x}", vm.name);
            }
            assert!(s2.translate(ipa::RAM_BASE + vm.ram.size).is_none());
        }
    }

    #[test]
    fn rejects_bad_mappings() {
        let mut pool = vec![Table::EMPTY; 3];
        let mut s2 = Stage2::new(&mut pool);
        assert_eq!(
            s2.map(0x1000, 0x1001, 0x1000, MemKind::Normal, Access::ReadWrite),
            Err(MapError::Unaligned)
        );
        assert_eq!(
            s2.map(0x1000, 0x1000, 0, MemKind::Normal, Access::ReadWrite),
            Err(MapError::Unaligned)
        );
        assert_eq!(
            s2.map(0xFFFF_F000, 0, 0x2000, MemKind::Normal, Access::ReadWrite),
            Err(MapError::OutOfRange)
        );
        s2.map(
            0x4000_0000,
            0x4000_0000,
            0x20_0000,
            MemKind::Normal,
            Access::ReadWrite,
        )
        .unwrap();
        assert_eq!(
            s2.map(
                0x4000_0000,
                0x5000_0000,
                0x1000,
                MemKind::Normal,
                Access::ReadWrite
            ),
            Err(MapError::AlreadyMapped)
        );
        // Pool of 3: root, one L2, one L3. A page in another GiB needs two more tables.
        s2.map(
            0x4020_0000,
            0x4020_0000,
            0x1000,
            MemKind::Normal,
            Access::ReadWrite,
        )
        .unwrap();
        assert_eq!(
            s2.map(
                0x8000_0000,
                0x8000_0000,
                0x1000,
                MemKind::Normal,
                Access::ReadWrite
            ),
            Err(MapError::NoTables)
        );
    }
}
