//! Reads the device tree QEMU passes and checks it against the platform constants: the RAM
//! must hold every partition, the CPUs, GIC and UART must be where the partition table expects
//! them, and so must the PCIe host (ECAM, memory window, INTx routing of the assigned slots)
//! and the SMMU (registers, interrupts).

use sis_platform::layout::{ipa, irq, phys};
use sis_platform::partition::PARTITIONS;

use crate::hvprintln;

/// Checks the DTB at `addr`; reports (and keeps booting on) any mismatch, since the constants
/// are what the partition table was validated against. Returns whether the PCIe host and the
/// SMMU are where the constants say: if not, no device is switched on.
pub fn check(addr: u64) -> bool {
    // SAFETY: QEMU leaves the DTB at the start of RAM, identity-mapped; `from_ptr` validates
    // the header and total size before reading further.
    let fdt = match unsafe { fdt::Fdt::from_ptr(addr as *const u8) } {
        Ok(f) => f,
        Err(e) => {
            hvprintln!("dtb: no valid device tree at {addr:#x} ({e:?}); using built-in layout");
            return false;
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
    pci_and_smmu(&fdt)
}

/// Big-endian 32-bit cells of a property.
fn cells(v: &[u8]) -> impl Iterator<Item = u32> + '_ {
    v.chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

fn pci_and_smmu(fdt: &fdt::Fdt<'_>) -> bool {
    let mut ok = true;
    let mut bad = |what: core::fmt::Arguments<'_>| {
        hvprintln!("dtb: WARNING: {what}");
        ok = false;
    };
    match fdt.find_compatible(&["arm,smmu-v3"]) {
        None => bad(format_args!(
            "no SMMUv3 (run with -machine virt,iommu=smmuv3)"
        )),
        Some(n) => {
            let base = n
                .reg()
                .and_then(|mut r| r.next())
                .map(|r| r.starting_address as u64);
            if base != Some(phys::SMMU_BASE) {
                bad(format_args!(
                    "SMMU at {:#x}, expected {:#x}",
                    base.unwrap_or(0),
                    phys::SMMU_BASE
                ));
            }
            // Four (type, number, flags) triples: eventq, priq, cmdq-sync, gerror; SPIs.
            let irqs: [u32; 12] = core::array::from_fn(|i| {
                n.property("interrupts")
                    .and_then(|p| cells(p.value).nth(i))
                    .unwrap_or(u32::MAX)
            });
            if irqs[1] + 32 != irq::SMMU_EVENTQ || irqs[10] + 32 != irq::SMMU_GERROR {
                bad(format_args!(
                    "SMMU interrupts SPI {} / {}, expected INTIDs {} / {}",
                    irqs[1],
                    irqs[10],
                    irq::SMMU_EVENTQ,
                    irq::SMMU_GERROR
                ));
            }
        }
    }
    let Some(pcie) = fdt.find_compatible(&["pci-host-ecam-generic"]) else {
        bad(format_args!("no PCIe host"));
        return ok;
    };
    match pcie.reg().and_then(|mut r| r.next()) {
        Some(r)
            if r.starting_address as u64 == phys::PCIE_ECAM_BASE
                && r.size.unwrap_or(0) as u64 >= ipa::PCI_ECAM_SIZE => {}
        r => bad(format_args!(
            "PCIe ECAM at {:#x}, expected {:#x} (run with -machine virt,highmem=off)",
            r.map_or(0, |r| r.starting_address as u64),
            phys::PCIE_ECAM_BASE
        )),
    }
    // ranges: (3 PCI address cells, 2 CPU address cells, 2 size cells); the 32-bit memory
    // window has space code 0b10 and the same address on both sides.
    let window = pcie.property("ranges").and_then(|p| {
        p.value
            .chunks_exact(28)
            .map(|e| core::array::from_fn::<u32, 7, _>(|i| cells(e).nth(i).unwrap_or(0)))
            .find(|e| (e[0] >> 24) & 3 == 2)
            .map(|e| {
                let cpu = u64::from(e[3]) << 32 | u64::from(e[4]);
                let size = u64::from(e[5]) << 32 | u64::from(e[6]);
                (cpu, size)
            })
    });
    if window != Some((phys::PCIE_MMIO_BASE, phys::PCIE_MMIO_SIZE)) {
        let (base, size) = window.unwrap_or((0, 0));
        bad(format_args!(
            "PCIe memory window {base:#x} + {size:#x}, expected {:#x} + {:#x}",
            phys::PCIE_MMIO_BASE,
            phys::PCIE_MMIO_SIZE
        ));
    }
    // interrupt-map: (PCI address 3 cells, pin, GIC phandle, 2 GIC address cells, SPI triple),
    // masked by slot & 3 and pin: each assigned function's INTA must be its INTx.
    let map = pcie.property("interrupt-map").map_or(&[][..], |p| p.value);
    for vm in PARTITIONS.iter() {
        for f in vm.pci {
            let slot = u32::from(f.device & 3) << 11;
            let spi = map
                .chunks_exact(40)
                .map(|e| core::array::from_fn::<u32, 10, _>(|i| cells(e).nth(i).unwrap_or(0)))
                .find(|e| e[0] & 0x1800 == slot && e[3] == 1)
                .map(|e| e[8] + 32);
            if spi != Some(f.intx) {
                bad(format_args!(
                    "INTA of slot {} routes to INTID {}, the partition table says {}",
                    f.device,
                    spi.unwrap_or(0),
                    f.intx
                ));
            }
        }
    }
    ok
}
