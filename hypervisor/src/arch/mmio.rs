//! Trapped guest accesses: stage-2 data aborts on emulated devices (PL011, GICD, GICR, the PCI
//! configuration view) or on memory the VM does not own (which stops the VM), and trapped system registers (SGIs, and the
//! PMU/debug/IMPDEF/set-way/ACTLR accesses `systrap` decides on).

use core::sync::atomic::Ordering;

use aarch64_cpu::registers::{
    ELR_EL1, ESR_EL1, FAR_EL2, HPFAR_EL2, ID_AA64MMFR1_EL1, SCTLR_EL1, SPSR_EL1, VBAR_EL1,
};
use sis_platform::layout::{ipa, PAGE_SIZE};
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::LocalRegisterCopy;

use super::console_in;
use super::vcpu::Vcpu;
use super::vm::Vm;
use hypervisor::access::BadAccess;
use hypervisor::systrap::{self, Action};
use hypervisor::vgic::Effect;
use hypervisor::vuart::Access;
use sis_regs::esr::Esr;
use sis_regs::icc::ICC_SGI1R_EL1;

use sis_platform::layout::phys::{GICD_SIZE, GICR_STRIDE};

/// An emulated device frame of a VM.
#[derive(Clone, Copy)]
enum Device {
    Uart,
    Gicd,
    Gicr,
}

impl Device {
    fn name(self) -> &'static str {
        match self {
            Device::Uart => "PL011",
            Device::Gicd => "GICD",
            Device::Gicr => "GICR",
        }
    }

    /// The emulated device at `ipa` for a VM with `vcpus` redistributors, and the offset.
    fn at(vm: &Vm, ipa: u64, vcpus: usize) -> Option<(Device, u64)> {
        let frame = |base: u64, size: u64| (base..base + size).contains(&ipa).then(|| ipa - base);
        if vm.cfg.emulated.uart {
            if let Some(off) = frame(ipa::UART_BASE, PAGE_SIZE) {
                return Some((Device::Uart, off));
            }
        }
        if let Some(off) = frame(ipa::GICD_BASE, GICD_SIZE) {
            return Some((Device::Gicd, off));
        }
        frame(ipa::GICR_BASE, GICR_STRIDE * vcpus as u64).map(|off| (Device::Gicr, off))
    }
}

/// Handles a stage-2 data abort: an access to an emulated device is checked (width, alignment,
/// register) and emulated; anything else, or a refused access, stops the VM with a report.
pub fn handle(v: &mut Vcpu, esr: Esr) {
    let ipa = ((HPFAR_EL2.get() >> 4) << 12) | (FAR_EL2.get() & 0xFFF);
    let Some(acc) = esr.data_access() else {
        v.fault("stage-2 data fault", Some(ipa), esr);
        return;
    };
    let value = if acc.write {
        let x = v.regs.get(acc.reg);
        Some(if acc.size >= 8 {
            x
        } else {
            x & ((1u64 << (8 * acc.size)) - 1)
        })
    } else {
        None
    };
    let vm = v.vm;
    let mut effect = Effect::default();
    let mut transmit = None;
    let result: Option<(Device, Result<u64, BadAccess>)> = {
        let mut d = vm.inner.lock();
        let vcpus = d.vgic.vcpus();
        Device::at(vm, ipa, vcpus).map(|(dev, off)| {
            let r = match dev {
                Device::Uart => d
                    .vuart
                    .access(off, acc.size, value.map(|x| x as u32))
                    .map(|a| {
                        let r = match a {
                            Access::Read(x) => u64::from(x),
                            Access::Transmit(b) => {
                                transmit = Some(b);
                                0
                            }
                            Access::Written | Access::Bad => 0,
                        };
                        (r, Effect::default())
                    }),
                Device::Gicd => d.vgic.dist_access(off, acc.size, value, &vm.pending),
                Device::Gicr => d.vgic.redist_access(off, acc.size, value, &vm.pending),
            }
            .map(|(r, e)| {
                effect = e;
                r
            });
            (dev, r)
        })
    };
    if let Some(b) = transmit {
        console_in::guest_output(vm.id, b);
    }
    // Not an emulated device: the VM's PCI configuration view, if it has one (which reports
    // why it refuses an access itself).
    let result = result
        .map(|(dev, r)| (dev.name(), r.map_err(Some)))
        .or_else(|| {
            super::pci::trapped(vm.id, ipa, acc.size, value)
                .map(|r| ("PCI configuration", r.map_err(|()| None)))
        });
    match result {
        Some((_, Ok(r))) => {
            if !acc.write {
                let mut r = r;
                if acc.sign_extend && acc.size < 8 {
                    let shift = 64 - 8 * acc.size;
                    r = (((r << shift) as i64) >> shift) as u64;
                    if !acc.sf {
                        r &= 0xFFFF_FFFF;
                    }
                }
                v.regs.set(acc.reg, r);
            }
            v.regs.elr = v.regs.elr.wrapping_add(4);
            if effect.rescan {
                vm.kick_all();
            }
        }
        Some((dev, Err(Some(bad)))) => {
            v.fault(format_args!("refused {dev} access ({bad})"), Some(ipa), esr)
        }
        Some((dev, Err(None))) => v.fault(format_args!("refused {dev} access"), Some(ipa), esr),
        None => v.fault("stage-2 data fault", Some(ipa), esr),
    }
}

/// Handles a trapped MSR/MRS/SYS instruction as `systrap::classify` says: guest SGIs, RAZ/WI,
/// an Undefined Instruction exception for the guest (counted), or a stopped VM.
pub fn sysreg(v: &mut Vcpu, esr: Esr) {
    let Some(s) = esr.sysreg() else {
        v.fault("unhandled trap", None, esr);
        return;
    };
    match systrap::classify(&s) {
        Action::Sgi => {
            sgi(v, v.regs.get(s.reg));
            v.regs.elr = v.regs.elr.wrapping_add(4);
        }
        Action::RazWi => {
            if s.read {
                v.regs.set(s.reg, 0);
            }
            v.regs.elr = v.regs.elr.wrapping_add(4);
        }
        Action::Undefined(class) => {
            v.vm.stats.undefined.fetch_add(1, Ordering::Relaxed);
            if !inject_undefined(v, esr) {
                v.fault(
                    format_args!("{} register access from a non-guest state", class.name()),
                    None,
                    esr,
                );
            }
        }
        Action::Unhandled => v.fault("unhandled system register access", None, esr),
    }
}

/// Delivers an Undefined Instruction exception to the guest's EL1 at the trapped instruction
/// (vector, ESR_EL1, ELR_EL1, SPSR_EL1 computed by `systrap::undefined_entry`). False if the
/// trap came from a state a guest cannot be in.
fn inject_undefined(v: &mut Vcpu, esr: Esr) -> bool {
    let pan = ID_AA64MMFR1_EL1.read(ID_AA64MMFR1_EL1::PAN) != 0;
    let set_pan = pan && SCTLR_EL1.get() & SCTLR_EL1_SPAN == 0;
    let Some(e) =
        systrap::undefined_entry(v.regs.spsr, v.regs.elr, VBAR_EL1.get(), esr.il32(), set_pan)
    else {
        return false;
    };
    ESR_EL1.set(e.esr_el1);
    ELR_EL1.set(e.elr_el1);
    SPSR_EL1.set(e.spsr_el1);
    v.regs.elr = e.pc;
    v.regs.spsr = e.pstate;
    true
}

/// SCTLR_EL1.SPAN (FEAT_PAN): 0 = set PSTATE.PAN on exception entry to EL1.
const SCTLR_EL1_SPAN: u64 = 1 << 23;

/// An `ICC_SGI1R_EL1` write of `x`: SGIs to the VM's own vCPUs only.
fn sgi(v: &Vcpu, x: u64) {
    let x = LocalRegisterCopy::<u64, ICC_SGI1R_EL1::Register>::new(x);
    let intid = x.read(ICC_SGI1R_EL1::INTID) as u32;
    let all_others = x.is_set(ICC_SGI1R_EL1::IRM);
    let targets = x.read(ICC_SGI1R_EL1::TARGETLIST);
    let aff_zero = x.read(ICC_SGI1R_EL1::AFF1) == 0 && x.read(ICC_SGI1R_EL1::AFF2) == 0;
    let vm = v.vm;
    for (t, &core) in vm.cfg.cores.iter().enumerate() {
        let hit = if all_others {
            t != v.idx
        } else {
            aff_zero && core < 16 && targets & (1 << core) != 0
        };
        if hit {
            vm.raise(t, intid);
        }
    }
}
