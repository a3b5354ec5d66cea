//! Guest calls through HVC or SMC: PSCI (confined to the caller's VM) and the SIS vendor
//! hypercalls (`sis_platform::hypercall`). Every argument is validated; bad ones get an SMCCC /
//! PSCI error code and change nothing.

use core::sync::atomic::Ordering;

use sis_platform::hypercall as hc;
use sis_platform::layout::ipa;
use smccc::psci;

use shared_ring::audit::AuditEntry;
use sis_platform::layout::irq;

use super::audit;
use super::vcpu::Vcpu;
use super::vm::{self, MAILBOX};
use crate::hvprintln;

/// SMCCC_VERSION function ID.
const SMCCC_VERSION: u32 = 0x8000_0000;
/// PSCI return codes.
const PSCI_SUCCESS: i64 = 0;
const PSCI_INVALID_PARAMETERS: i64 = -2;
const PSCI_ALREADY_ON: i64 = -4;
const PSCI_INVALID_ADDRESS: i64 = -9;
/// AFFINITY_INFO states.
const AFF_ON: i64 = 0;
const AFF_OFF: i64 = 1;
const AFF_ON_PENDING: i64 = 2;

/// Handles the call in the vCPU's x0..x3 and writes the result to x0.
pub fn handle(v: &mut Vcpu) {
    let fid = v.regs.x[0] as u32;
    let (a1, a2, a3) = (v.regs.x[1], v.regs.x[2], v.regs.x[3]);
    let ret: i64 = match fid {
        SMCCC_VERSION => 0x1_0001,
        psci::PSCI_VERSION => 0x1_0000,
        psci::PSCI_FEATURES => {
            if supported(a1 as u32) {
                0
            } else {
                hc::NOT_SUPPORTED
            }
        }
        psci::PSCI_CPU_ON_64 | psci::PSCI_CPU_ON_32 => cpu_on(v, a1, a2, a3),
        psci::PSCI_CPU_OFF => {
            v.go_offline();
            return;
        }
        psci::PSCI_AFFINITY_INFO_64 | psci::PSCI_AFFINITY_INFO_32 => affinity_info(v, a1, a2),
        psci::PSCI_SYSTEM_OFF => {
            hvprintln!("vm {} powered off (PSCI SYSTEM_OFF)", v.vm.cfg.name);
            let _ = vm::stop(v.vm);
            v.go_offline();
            return;
        }
        psci::PSCI_SYSTEM_RESET => {
            hvprintln!(
                "vm {} reset (PSCI SYSTEM_RESET): restarting it",
                v.vm.cfg.name
            );
            if let Err(e) = vm::restart(v.vm) {
                hvprintln!("vm {}: restart failed: {e}", v.vm.cfg.name);
            }
            v.go_offline();
            return;
        }
        hc::HV_VERSION => hc::ABI_VERSION as i64,
        hc::HV_DOORBELL => doorbell(v, a1),
        hc::HV_VM_STATE => match vm::VMS.get(a1 as usize) {
            Some(peer) => {
                v.regs.x[1] = peer.starts();
                i64::from(peer.running())
            }
            None => hc::INVALID_PARAMETER,
        },
        hc::HV_AUDIT_APPEND => {
            let args = [a1, a2, a3, v.regs.x[4], v.regs.x[5]];
            match AuditEntry::from_hypercall_args(args) {
                Ok(e) => match audit::append(v.vm.id as u16, &e) {
                    Ok(seq) => seq as i64,
                    Err(_) => hc::INVALID_PARAMETER,
                },
                Err(_) => {
                    v.vm.stats.audit_rejected.fetch_add(1, Ordering::Relaxed);
                    hc::INVALID_PARAMETER
                }
            }
        }
        hc::HV_VM_INFO => {
            v.regs.x[1] = v.vm.cfg.cpu_mask();
            v.regs.x[2] = v.vm.cfg.ram.size;
            v.vm.id as i64
        }
        _ => hc::NOT_SUPPORTED,
    };
    v.regs.x[0] = ret as u64;
}

/// Raises the doorbell in VM `target` on the vCPU its distributor routes it to.
fn doorbell(v: &Vcpu, target: u64) -> i64 {
    let Some(peer) = vm::VMS.get(target as usize) else {
        return hc::INVALID_PARAMETER;
    };
    if peer.id == v.vm.id {
        return hc::INVALID_PARAMETER;
    }
    if !peer.running() {
        return hc::TARGET_STOPPED;
    }
    let t = peer.inner.lock().vgic.target(irq::DOORBELL);
    peer.pending[t].raise(irq::DOORBELL);
    peer.kick(t);
    v.vm.stats.doorbells_sent.fetch_add(1, Ordering::Relaxed);
    peer.stats
        .doorbells_received
        .fetch_add(1, Ordering::Relaxed);
    0
}

fn supported(fid: u32) -> bool {
    matches!(
        fid,
        SMCCC_VERSION
            | psci::PSCI_VERSION
            | psci::PSCI_FEATURES
            | psci::PSCI_CPU_ON_64
            | psci::PSCI_CPU_ON_32
            | psci::PSCI_CPU_OFF
            | psci::PSCI_AFFINITY_INFO_64
            | psci::PSCI_AFFINITY_INFO_32
            | psci::PSCI_SYSTEM_OFF
            | psci::PSCI_SYSTEM_RESET
    )
}

/// The VM's core with MPIDR `mpidr`, if it has it.
fn own_core(v: &Vcpu, mpidr: u64) -> Option<usize> {
    if mpidr & !0xFF != 0 {
        return None;
    }
    let core = mpidr as usize;
    v.vm.cfg.cores.contains(&core).then_some(core)
}

fn cpu_on(v: &mut Vcpu, target: u64, entry: u64, ctx: u64) -> i64 {
    let Some(core) = own_core(v, target) else {
        return PSCI_INVALID_PARAMETERS;
    };
    if !(ipa::RAM_BASE..ipa::RAM_BASE + v.vm.cfg.ram.size).contains(&entry)
        || !entry.is_multiple_of(4)
    {
        return PSCI_INVALID_ADDRESS;
    }
    let m = &MAILBOX[core];
    if m.online.load(Ordering::Acquire) || m.start.load(Ordering::Acquire) {
        return PSCI_ALREADY_ON;
    }
    vm::request_start(core, entry, ctx);
    PSCI_SUCCESS
}

fn affinity_info(v: &Vcpu, target: u64, level: u64) -> i64 {
    let Some(core) = own_core(v, target) else {
        return PSCI_INVALID_PARAMETERS;
    };
    if level != 0 {
        return PSCI_INVALID_PARAMETERS;
    }
    let m = &MAILBOX[core];
    if m.online.load(Ordering::Acquire) {
        AFF_ON
    } else if m.start.load(Ordering::Acquire) {
        AFF_ON_PENDING
    } else {
        AFF_OFF
    }
}
