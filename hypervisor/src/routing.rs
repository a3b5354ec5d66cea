//! Which core each physical SPI the hypervisor enables is routed to, from the partition table:
//! the interrupts of work no guest owns (physical UART input, which also carries the monitor,
//! and the SMMU's event and error interrupts) go to the table's work core; a VM's own SPIs (its
//! PCI functions' INTx lines) go to the VM's boot core, where its vCPU takes them.

use sis_platform::layout::irq;
use sis_platform::partition::System;

/// The core `intid` is routed to, or `None` for an interrupt the hypervisor does not enable.
pub fn spi_core(sys: &System, intid: u32) -> Option<usize> {
    match intid {
        irq::UART | irq::SMMU_EVENTQ | irq::SMMU_GERROR => Some(sys.work_core),
        _ => sys
            .vms
            .iter()
            .find(|vm| vm.irqs.contains(&intid))
            .map(|vm| vm.cores[0]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use sis_platform::partition::{PARTITIONS, SYSTEM, VM_CTL, VM_LLM};
    use std::boxed::Box;

    #[test]
    fn work_no_guest_owns_goes_to_the_work_core() {
        for intid in [irq::UART, irq::SMMU_EVENTQ, irq::SMMU_GERROR] {
            assert_eq!(spi_core(&SYSTEM, intid), Some(0), "{intid}");
        }
        assert_eq!(spi_core(&SYSTEM, 36), Some(0));
        assert_eq!(spi_core(&SYSTEM, irq::DOORBELL), None);
    }

    #[test]
    fn moving_ctl_off_core_0_moves_its_interrupts_and_the_work_core_with_it() {
        let (mut ctl, mut llm) = (PARTITIONS[VM_CTL], PARTITIONS[VM_LLM]);
        ctl.cores = &[3];
        llm.cores = &[0, 1, 2];
        let moved = System {
            vms: Box::leak(Box::new([ctl, llm])),
            work_core: 3,
            ..SYSTEM
        };
        assert_eq!(sis_platform::validate(&moved), Ok(()));
        for intid in [irq::UART, irq::SMMU_EVENTQ, irq::SMMU_GERROR] {
            assert_eq!(spi_core(&moved, intid), Some(3), "{intid}");
        }
        // ctl's INTx lines follow ctl.
        for f in ctl.pci {
            assert_eq!(spi_core(&moved, f.intx), Some(3));
        }
    }
}
