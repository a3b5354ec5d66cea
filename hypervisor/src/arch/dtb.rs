//! Reads the device tree QEMU passes and checks it against the platform constants: the RAM
//! must hold every partition, and the CPUs, GIC and UART must be where the partition table
//! expects them.

use sis_platform::layout::phys;

use crate::hvprintln;

/// Checks the DTB at `addr`; reports (and keeps booting on) any mismatch, since the constants
/// are what the partition table was validated against.
pub fn check(addr: u64) {
    // SAFETY: QEMU leaves the DTB at the start of RAM, identity-mapped; `from_ptr` validates
    // the header and total size before reading further.
    let fdt = match unsafe { fdt::Fdt::from_ptr(addr as *const u8) } {
        Ok(f) => f,
        Err(e) => {
            hvprintln!("dtb: no valid device tree at {addr:#x} ({e:?}); using built-in layout");
            return;
        }
    };
    let mut ram_top = 0;
    for r in fdt.memory().regions() {
        let base = r.starting_address as u64;
        let top = base + r.size.unwrap_or(0) as u64;
        ram_top = ram_top.max(top);
        hvprintln!("dtb: memory {base:#x}..{top:#x}");
    }
    if ram_top < phys::RAM_BASE + phys::RAM_SIZE {
        hvprintln!(
            "dtb: WARNING: RAM ends at {ram_top:#x}, the partition table needs {:#x} (run with -m 2G)",
            phys::RAM_BASE + phys::RAM_SIZE
        );
    }
    let cpus = fdt.cpus().count();
    if cpus != phys::NUM_CORES {
        hvprintln!(
            "dtb: WARNING: {cpus} CPUs, the partition table expects {}",
            phys::NUM_CORES
        );
    }
    for (compat, base) in [
        ("arm,gic-v3", phys::GICD_BASE),
        ("arm,pl011", phys::UART_BASE),
    ] {
        match fdt
            .find_compatible(&[compat])
            .and_then(|n| n.reg().and_then(|mut r| r.next()))
        {
            Some(r) if r.starting_address as u64 == base => {}
            Some(r) => hvprintln!(
                "dtb: WARNING: {compat} at {:#x}, expected {base:#x}",
                r.starting_address as u64
            ),
            None => hvprintln!("dtb: WARNING: no {compat} node"),
        }
    }
}
