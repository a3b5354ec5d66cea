//! Sanity checks on the boot-info block before the runtime relies on it (pure logic).

use core::fmt;

use sis_platform::layout::{ipa, phys::NUM_CORES};
use sis_platform::BootInfo;

/// What is wrong with a boot-info block that carries the right magic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    /// RAM does not start at the guest RAM base.
    RamBase(u64),
    /// RAM ends before the end of the kernel image (or overflows).
    RamTooSmall {
        /// RAM size given.
        size: u64,
        /// Address the image and stacks end at.
        image_end: u64,
    },
    /// The core we booted on is not in the VM's core mask, or the mask names cores the
    /// platform does not have.
    CpuMask {
        /// Mask given.
        mask: u64,
        /// Core we run on.
        core: usize,
    },
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BootInfoError::RamBase(b) => write!(f, "RAM base {b:#x} is not {:#x}", ipa::RAM_BASE),
            BootInfoError::RamTooSmall { size, image_end } => {
                write!(
                    f,
                    "RAM size {size:#x} does not cover the image (ends at {image_end:#x})"
                )
            }
            BootInfoError::CpuMask { mask, core } => {
                write!(
                    f,
                    "core mask {mask:#b} does not contain boot core {core} or names absent cores"
                )
            }
        }
    }
}

/// Checks `info` for a guest whose image ends at `image_end`, booted on `core`.
pub fn check(info: &BootInfo, image_end: u64, core: usize) -> Result<(), BootInfoError> {
    if info.ram_base != ipa::RAM_BASE {
        return Err(BootInfoError::RamBase(info.ram_base));
    }
    match info.ram_base.checked_add(info.ram_size) {
        Some(end) if end >= image_end => {}
        _ => {
            return Err(BootInfoError::RamTooSmall {
                size: info.ram_size,
                image_end,
            })
        }
    }
    let all = (1u64 << NUM_CORES) - 1;
    if core >= NUM_CORES || info.cpu_mask & (1 << core) == 0 || info.cpu_mask & !all != 0 {
        return Err(BootInfoError::CpuMask {
            mask: info.cpu_mask,
            core,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn llm() -> BootInfo {
        let mut b = BootInfo::native(384 << 20);
        b.cpu_mask = 0b1110;
        b.boot_cpu = 1;
        b
    }

    #[test]
    fn accepts_a_sane_block() {
        assert_eq!(check(&llm(), ipa::KERNEL_BASE + (2 << 20), 1), Ok(()));
    }

    #[test]
    fn rejects_wrong_base_small_ram_and_foreign_core() {
        let mut b = llm();
        b.ram_base = 0x8000_0000;
        assert_eq!(
            check(&b, ipa::KERNEL_BASE, 1),
            Err(BootInfoError::RamBase(0x8000_0000))
        );
        let mut b = llm();
        b.ram_size = 1 << 20;
        assert!(matches!(
            check(&b, ipa::KERNEL_BASE + (2 << 20), 1),
            Err(BootInfoError::RamTooSmall { .. })
        ));
        b.ram_size = u64::MAX;
        assert!(matches!(
            check(&b, ipa::KERNEL_BASE, 1),
            Err(BootInfoError::RamTooSmall { .. })
        ));
        assert!(matches!(
            check(&llm(), ipa::KERNEL_BASE, 0),
            Err(BootInfoError::CpuMask { .. })
        ));
        let mut b = llm();
        b.cpu_mask |= 1 << 40;
        assert!(matches!(
            check(&b, ipa::KERNEL_BASE, 1),
            Err(BootInfoError::CpuMask { .. })
        ));
    }
}
