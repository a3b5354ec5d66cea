//! Trapped guest accesses: stage-2 data aborts on emulated devices (PL011, GICD, GICR) or on
//! memory the VM does not own (which stops the VM), and trapped system registers (SGIs).

use aarch64_cpu::registers::{FAR_EL2, HPFAR_EL2};
use sis_platform::layout::{ipa, PAGE_SIZE};
use tock_registers::interfaces::Readable;

use super::console_in;
use super::vcpu::Vcpu;
use crate::esr::Esr;
use crate::vgic::Effect;
use crate::vuart::Access;

const GICD_SIZE: u64 = 0x1_0000;
const GICR_STRIDE: u64 = 0x2_0000;

/// Handles a stage-2 data abort.
pub fn handle(v: &mut Vcpu, esr: Esr) {
    let ipa = ((HPFAR_EL2.get() >> 4) << 12) | (FAR_EL2.get() & 0xFFF);
    let Some(acc) = esr.data_access() else {
        v.fault("stage-2 data fault", Some(ipa), esr);
        return;
    };
    let value = if acc.write {
        let x = v.regs.get(acc.reg);
        Some(if acc.size == 8 {
            x
        } else {
            x & ((1u64 << (8 * acc.size)) - 1)
        })
    } else {
        None
    };
    let vm = v.vm;
    let mut effect = Effect::default();
    let result: Result<u64, ()> = {
        let mut d = vm.inner.lock();
        if vm.cfg.emulated.uart && (ipa::UART_BASE..ipa::UART_BASE + PAGE_SIZE).contains(&ipa) {
            let off = ipa - ipa::UART_BASE;
            if acc.size > 4 || !off.is_multiple_of(acc.size) {
                Err(())
            } else {
                let a = match value {
                    Some(x) => d.vuart.write(off & !3, x as u32),
                    None => d.vuart.read(off & !3),
                };
                match a {
                    Access::Read(x) => Ok(u64::from(x)),
                    Access::Written => Ok(0),
                    Access::Transmit(b) => {
                        drop(d);
                        console_in::guest_output(vm.id, b);
                        Ok(0)
                    }
                    Access::Bad => Err(()),
                }
            }
        } else if (ipa::GICD_BASE..ipa::GICD_BASE + GICD_SIZE).contains(&ipa) {
            d.vgic
                .dist_access(ipa - ipa::GICD_BASE, acc.size, value, &vm.pending)
                .map(|(r, e)| {
                    effect = e;
                    r
                })
                .map_err(drop)
        } else if (ipa::GICR_BASE..ipa::GICR_BASE + GICR_STRIDE * d.vgic.vcpus() as u64)
            .contains(&ipa)
        {
            d.vgic
                .redist_access(ipa - ipa::GICR_BASE, acc.size, value, &vm.pending)
                .map(|(r, e)| {
                    effect = e;
                    r
                })
                .map_err(drop)
        } else if let Some(r) = super::pci::trapped(vm.id, ipa, acc.size, value) {
            r
        } else {
            Err(())
        }
    };
    match result {
        Ok(r) => {
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
            v.regs.elr += 4;
            if effect.rescan {
                vm.kick_all();
            }
        }
        Err(()) => v.fault("stage-2 data fault", Some(ipa), esr),
    }
}

/// Handles a trapped MSR/MRS: guest SGIs through ICC_SGI1R_EL1; anything else stops the VM.
pub fn sysreg(v: &mut Vcpu, esr: Esr) {
    let Some(s) = esr.sysreg() else {
        v.fault("unhandled trap", None, esr);
        return;
    };
    if !s.is_icc_sgi1r() || s.read {
        v.fault("unhandled system register access", None, esr);
        return;
    }
    let x = v.regs.get(s.reg);
    let intid = ((x >> 24) & 0xF) as u32;
    let all_others = x & (1 << 40) != 0;
    let aff1 = (x >> 16) & 0xFF;
    let targets = x & 0xFFFF;
    let vm = v.vm;
    for (t, &core) in vm.cfg.cores.iter().enumerate() {
        let hit = if all_others {
            t != v.idx
        } else {
            aff1 == 0 && (x >> 32) & 0xFF == 0 && core < 16 && targets & (1 << core) != 0
        };
        if hit {
            vm.pending[t].raise(intid);
            vm.kick(t);
        }
    }
    v.regs.elr += 4;
}
