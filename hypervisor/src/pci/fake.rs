//! A model of configuration space for host tests: registers with hardware write masks (so BAR
//! sizing behaves as on hardware), QEMU `virt`'s root bus with the run script's devices, and a
//! log of every write that reached a function.

extern crate std;
use std::collections::BTreeMap;
use std::vec::Vec;

use super::{reg, ConfigAccess};

/// Offset of the virtio common configuration in BAR 4 (QEMU's layout).
pub const VIRTIO_COMMON_OFFSET: u64 = 0x0000;
/// Offset of the virtio ISR byte in BAR 4.
pub const VIRTIO_ISR_OFFSET: u64 = 0x1000;

/// One function's registers.
#[derive(Clone)]
pub struct Space {
    /// Current values, one per dword.
    pub regs: Vec<u32>,
    /// Writable bits per dword.
    pub wmask: Vec<u32>,
}

impl Space {
    fn new(id: u32, class_rev: u32, header: u32) -> Space {
        let mut s = Space {
            regs: vec![0; 1024],
            wmask: vec![0; 1024],
        };
        s.regs[0] = id;
        s.regs[2] = class_rev;
        s.regs[3] = header << 16;
        s.wmask[1] = 0x0407;
        s.wmask[(reg::INTERRUPT / 4) as usize] = 0xFF;
        s
    }

    fn set_bar(&mut self, index: usize, size: u64, flags: u32) {
        let mask = !(size - 1);
        self.regs[4 + index] = flags;
        self.wmask[4 + index] = mask as u32 & !0xF;
        if flags & 0x6 == 0x4 {
            self.wmask[5 + index] = (mask >> 32) as u32;
        }
    }

    /// A virtio modern device: a 16 KiB 64-bit prefetchable BAR 4 and the four virtio
    /// capabilities pointing into it, INTA.
    fn virtio(device_id: u32, class_rev: u32) -> Space {
        let mut s = Space::new(0x1AF4 | device_id << 16, class_rev, 0);
        s.set_bar(4, 0x4000, 0xC);
        s.regs[1] = 0x0010_0000;
        s.regs[(reg::CAP_PTR / 4) as usize] = 0x40;
        s.regs[(reg::INTERRUPT / 4) as usize] = 0x0100;
        // (offset, next, length, type, bar offset)
        for (at, next, len, ty, off) in [
            (0x40, 0x50, 16, 1, VIRTIO_COMMON_OFFSET),
            (0x50, 0x60, 16, 3, VIRTIO_ISR_OFFSET),
            (0x60, 0x70, 16, 4, 0x2000),
            (0x70, 0x00, 20, 2, 0x3000),
        ] {
            let d = at / 4;
            s.regs[d] = 0x09 | next << 8 | len << 16 | ty << 24;
            s.regs[d + 1] = 4;
            s.regs[d + 2] = off as u32;
            s.regs[d + 3] = 0x1000;
        }
        s.regs[0x80 / 4] = 4;
        s
    }
}

/// A root bus of modelled functions.
#[derive(Clone, Default)]
pub struct Fake {
    /// Functions by requester ID.
    pub functions: BTreeMap<u32, Space>,
    /// Every write that reached a present function: (rid, offset, value).
    pub writes: Vec<(u32, u16, u32)>,
}

impl Fake {
    /// QEMU `virt` with `scripts/run.sh`'s devices: the host bridge at 00:00.0,
    /// virtio-serial at 00:01.0, virtio-rng at 00:02.0.
    pub fn qemu_virt() -> Fake {
        let mut f = Fake::default();
        f.functions
            .insert(0x00, Space::new(0x1B36 | 0x0008 << 16, 0x0600_0000, 0));
        f.functions.insert(0x08, Space::virtio(0x1043, 0x0780_0001));
        f.functions.insert(0x10, Space::virtio(0x1044, 0x00FF_0001));
        f
    }

    /// Removes a function.
    pub fn remove(&mut self, rid: u32) {
        self.functions.remove(&rid);
    }

    /// Puts a PCI-to-PCI bridge (type 1 header, bus numbers 0/1/1) at `rid`.
    pub fn add_bridge(&mut self, rid: u32) {
        let mut s = Space::new(0x1B36 | 0x000C << 16, 0x0604_0000, 1);
        s.regs[(reg::BUS_NUMBERS / 4) as usize] = 0x0001_0100;
        s.wmask[(reg::BUS_NUMBERS / 4) as usize] = 0x00FF_FFFF;
        s.regs[(reg::INTERRUPT / 4) as usize] = 0x0100;
        self.functions.insert(rid, s);
    }

    /// Gives the function at `rid` an I/O BAR 0 of 32 bytes.
    pub fn add_io_bar(&mut self, rid: u32) {
        let s = self.functions.get_mut(&rid).unwrap();
        s.regs[4] = 1;
        s.wmask[4] = !0x1F;
    }

    /// The register at `offset` of `rid` (all-ones if absent).
    pub fn reg(&self, rid: u32, offset: u16) -> u32 {
        self.functions
            .get(&rid)
            .map_or(u32::MAX, |s| s.regs[(offset / 4) as usize])
    }

    /// The writes that reached `rid`: (offset, value).
    pub fn writes_to(&self, rid: u32) -> Vec<(u16, u32)> {
        self.writes
            .iter()
            .filter(|w| w.0 == rid)
            .map(|w| (w.1, w.2))
            .collect()
    }
}

impl ConfigAccess for Fake {
    fn read(&mut self, rid: u32, offset: u16) -> u32 {
        assert!(
            offset.is_multiple_of(4) && offset < reg::SPACE,
            "bad dword {offset:#x}"
        );
        self.reg(rid, offset)
    }

    fn write(&mut self, rid: u32, offset: u16, value: u32) {
        assert!(
            offset.is_multiple_of(4) && offset < reg::SPACE,
            "bad dword {offset:#x}"
        );
        if let Some(s) = self.functions.get_mut(&rid) {
            let d = (offset / 4) as usize;
            s.regs[d] = (s.regs[d] & !s.wmask[d]) | (value & s.wmask[d]);
            self.writes.push((rid, offset, value));
        }
    }
}
