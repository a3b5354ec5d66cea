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
    /// The model region lies inside RAM but overlaps the kernel image or reaches past RAM.
    ModelInRam {
        /// Region base.
        base: u64,
        /// Region size.
        size: u64,
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
            BootInfoError::ModelInRam { base, size } => write!(
                f,
                "model region {base:#x}+{size:#x} overlaps the kernel image or leaves RAM"
            ),
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
    let ram_end = info.ram_base + info.ram_size;
    let model_end = info.model_base.checked_add(info.model_size);
    if info.model_size != 0
        && info.model_base < ram_end
        && model_end.is_none_or(|e| e > info.ram_base)
        && (info.model_base < image_end || model_end.is_none_or(|e| e > ram_end))
    {
        return Err(BootInfoError::ModelInRam {
            base: info.model_base,
            size: info.model_size,
        });
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

/// End of the memory the heap may use: the end of RAM, or the start of the model region when
/// it lies inside RAM (a native boot, see `sis_platform::layout::native`; under the hypervisor
/// the region is outside RAM). Call after [`check`].
pub fn heap_end(info: &BootInfo) -> u64 {
    let ram_end = info.ram_base + info.ram_size;
    if info.model_size != 0 && (info.ram_base..ram_end).contains(&info.model_base) {
        info.model_base
    } else {
        ram_end
    }
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

    #[test]
    fn heap_stops_below_a_model_region_inside_ram() {
        use sis_platform::layout::native;
        let mut b = BootInfo::native(native::RAM_SIZE);
        assert_eq!(heap_end(&b), ipa::RAM_BASE + native::RAM_SIZE);
        b.model_base = native::MODEL_BASE;
        b.model_size = native::MODEL_SIZE;
        assert_eq!(check(&b, ipa::KERNEL_BASE + (2 << 20), 0), Ok(()));
        assert_eq!(heap_end(&b), native::MODEL_BASE);
        // Under the hypervisor the region is below RAM: the heap takes all of RAM.
        let mut h = llm();
        h.model_base = ipa::MODEL_BASE;
        h.model_size = 0x1000_0000;
        assert_eq!(check(&h, ipa::KERNEL_BASE, 1), Ok(()));
        assert_eq!(heap_end(&h), ipa::RAM_BASE + h.ram_size);
    }

    #[test]
    fn rejects_a_model_region_over_the_image_or_past_ram() {
        let mut b = BootInfo::native(512 << 20);
        b.model_base = ipa::KERNEL_BASE;
        b.model_size = 1 << 20;
        assert!(matches!(
            check(&b, ipa::KERNEL_BASE + (2 << 20), 0),
            Err(BootInfoError::ModelInRam { .. })
        ));
        b.model_base = ipa::RAM_BASE + (500 << 20);
        b.model_size = 64 << 20;
        assert!(matches!(
            check(&b, ipa::KERNEL_BASE + (2 << 20), 0),
            Err(BootInfoError::ModelInRam { .. })
        ));
        b.model_size = u64::MAX;
        assert!(matches!(
            check(&b, ipa::KERNEL_BASE + (2 << 20), 0),
            Err(BootInfoError::ModelInRam { .. })
        ));
    }
}
