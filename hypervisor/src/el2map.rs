//! The hypervisor's own EL2 stage-1 map: an identity map that is W^X. Hypervisor text is
//! read-only executable, rodata read-only, data, bss, stacks and tables read-write and
//! execute-never; the DTB read-only; guest RAM, the shared regions and everything else
//! execute-never; MMIO is device memory and execute-never. Pages (4 KiB) only where a section
//! boundary needs them, 2 MiB blocks elsewhere.
//!
//! The tables are built with the stage-2 table builder (same granule and levels) and
//! [`check`]ed after building: no leaf is both writable and executable, and only the text is
//! executable.

use sis_platform::layout::phys;

use crate::stage2::{MapError, Stage2};

/// Stage-1 descriptor bits for the EL2 (non-VHE) translation regime.
mod desc {
    pub const VALID: u64 = 1 << 0;
    /// MAIR_EL2 index (AttrIndx[2:0]).
    pub const ATTR_SHIFT: u64 = 2;
    /// AP[2:1] = 0b01: read/write (AP[1] is RES1 in a one-privilege-level regime).
    pub const AP_RW: u64 = 0b01 << 6;
    /// AP[2:1] = 0b11: read-only.
    pub const AP_RO: u64 = 0b11 << 6;
    pub const AP_MASK: u64 = 0b11 << 6;
    /// Inner shareable.
    pub const SH_INNER: u64 = 0b11 << 8;
    /// Access flag.
    pub const AF: u64 = 1 << 10;
    /// Execute never (bit 54 in a one-VA-range regime).
    pub const XN: u64 = 1 << 54;
}

/// MAIR_EL2 index of normal write-back memory.
pub const ATTR_NORMAL: u64 = 0;
/// MAIR_EL2 index of Device-nGnRE memory.
pub const ATTR_DEVICE: u64 = 1;

/// Rights and type of a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Perm {
    /// Hypervisor text: read-only, executable.
    Text,
    /// Read-only, execute-never.
    ReadOnly,
    /// Read-write, execute-never.
    ReadWrite,
    /// MMIO: device memory, read-write, execute-never.
    Device,
}

impl Perm {
    fn attrs(self) -> u64 {
        let normal = desc::VALID | desc::AF | desc::SH_INNER | (ATTR_NORMAL << desc::ATTR_SHIFT);
        match self {
            Perm::Text => normal | desc::AP_RO,
            Perm::ReadOnly => normal | desc::AP_RO | desc::XN,
            Perm::ReadWrite => normal | desc::AP_RW | desc::XN,
            Perm::Device => {
                desc::VALID | desc::AF | (ATTR_DEVICE << desc::ATTR_SHIFT) | desc::AP_RW | desc::XN
            }
        }
    }
}

/// Where the hypervisor image's sections are (from the linker script; 4 KiB aligned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// First byte of text (the load address).
    pub text: u64,
    /// End of text, start of rodata.
    pub text_end: u64,
    /// End of rodata, start of data (data, bss, stacks and tables follow).
    pub rodata_end: u64,
    /// End of RAM.
    pub ram_end: u64,
}

/// What the map holds, for the boot report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Bytes mapped read-only executable.
    pub text: u64,
    /// Bytes mapped read-only, execute-never.
    pub read_only: u64,
    /// Bytes mapped read-write, execute-never (normal memory).
    pub read_write: u64,
    /// Bytes of device memory (execute-never).
    pub device: u64,
}

/// Why a map is not W^X.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A leaf at this address is writable and executable.
    WritableExecutable(u64),
    /// A leaf at this address outside the hypervisor text is executable.
    ExecutableData(u64),
    /// Device memory at this address is executable.
    ExecutableDevice(u64),
}

/// Builds the map of `layout` into `s1` (empty).
pub fn build(s1: &mut Stage2<'_>, layout: &Layout) -> Result<(), MapError> {
    let ranges = [
        (0, phys::RAM_BASE, Perm::Device),
        (phys::RAM_BASE, layout.text, Perm::ReadOnly),
        (layout.text, layout.text_end, Perm::Text),
        (layout.text_end, layout.rodata_end, Perm::ReadOnly),
        (layout.rodata_end, layout.ram_end, Perm::ReadWrite),
    ];
    for (start, end, perm) in ranges {
        if end > start {
            s1.map_leaf(start, start, end - start, perm.attrs())?;
        }
    }
    Ok(())
}

/// Checks every leaf of `s1`: none both writable and executable, only the text of `layout`
/// executable, device memory never executable. Returns what is mapped.
pub fn check(s1: &Stage2<'_>, layout: &Layout) -> Result<Summary, Violation> {
    let mut sum = Summary::default();
    for (addr, size, e) in s1.leaves() {
        let exec = e & desc::XN == 0;
        let writable = e & desc::AP_MASK == desc::AP_RW;
        let device = (e >> desc::ATTR_SHIFT) & 0b111 == ATTR_DEVICE;
        if exec && device {
            return Err(Violation::ExecutableDevice(addr));
        }
        if exec && writable {
            return Err(Violation::WritableExecutable(addr));
        }
        if exec && !(addr >= layout.text && addr + size <= layout.text_end) {
            return Err(Violation::ExecutableData(addr));
        }
        let slot = if device {
            &mut sum.device
        } else if exec {
            &mut sum.text
        } else if writable {
            &mut sum.read_write
        } else {
            &mut sum.read_only
        };
        *slot += size;
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage2::Table;
    extern crate std;
    use std::vec;

    /// The sizes of the real image (rodata holds the embedded guest images).
    const LAYOUT: Layout = Layout {
        text: 0x4020_0000,
        text_end: 0x4021_2000,
        rodata_end: 0x40F9_C000,
        ram_end: 0xC000_0000,
    };

    #[test]
    fn map_is_w_xor_x() {
        let mut pool = vec![Table::EMPTY; 8];
        let mut s1 = Stage2::new(&mut pool);
        build(&mut s1, &LAYOUT).unwrap();
        let sum = check(&s1, &LAYOUT).unwrap();
        assert_eq!(sum.text, 0x12000);
        assert_eq!(sum.device, 1 << 30);
        assert_eq!(
            sum.read_only,
            0x20_0000 + (LAYOUT.rodata_end - LAYOUT.text_end)
        );
        assert_eq!(
            sum.text + sum.read_only + sum.read_write + sum.device,
            LAYOUT.ram_end
        );
        // Identity map; text executable, everything else not; guest RAM writable.
        let (e, _) = s1.leaf(0x4020_0123).unwrap();
        assert_eq!(e & desc::XN, 0);
        assert_eq!(e & desc::AP_MASK, desc::AP_RO);
        assert_eq!(e & 0x0000_FFFF_FFFF_F000, 0x4020_0000);
        for addr in [
            0x4021_2000,
            0x4050_0000,
            0x40F9_C000,
            0x4100_0000,
            0x5000_0000,
        ] {
            let (e, _) = s1.leaf(addr).unwrap();
            assert_ne!(e & desc::XN, 0, "{addr:#x} executable");
        }
        let (e, size) = s1.leaf(0x5000_0000).unwrap();
        assert_eq!((e & desc::AP_MASK, size), (desc::AP_RW, 0x20_0000));
        let (e, _) = s1.leaf(0x0900_0000).unwrap();
        assert_eq!((e >> 2) & 0b111, ATTR_DEVICE);
        assert!(s1.leaf(0xC000_0000).is_none(), "nothing past RAM");
    }

    #[test]
    fn check_finds_violations() {
        let mut pool = vec![Table::EMPTY; 8];
        let mut s1 = Stage2::new(&mut pool);
        s1.map_leaf(
            0x4020_0000,
            0x4020_0000,
            0x1000,
            Perm::Text.attrs() & !desc::AP_MASK | desc::AP_RW,
        )
        .unwrap();
        assert_eq!(
            check(&s1, &LAYOUT),
            Err(Violation::WritableExecutable(0x4020_0000))
        );
        let mut pool = vec![Table::EMPTY; 8];
        let mut s1 = Stage2::new(&mut pool);
        s1.map_leaf(0x5000_0000, 0x5000_0000, 0x20_0000, Perm::Text.attrs())
            .unwrap();
        assert_eq!(
            check(&s1, &LAYOUT),
            Err(Violation::ExecutableData(0x5000_0000))
        );
        let mut pool = vec![Table::EMPTY; 8];
        let mut s1 = Stage2::new(&mut pool);
        s1.map_leaf(
            0x0900_0000,
            0x0900_0000,
            0x1000,
            Perm::Device.attrs() & !desc::XN,
        )
        .unwrap();
        assert_eq!(
            check(&s1, &LAYOUT),
            Err(Violation::ExecutableDevice(0x0900_0000))
        );
    }
}
