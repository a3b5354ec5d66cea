//! Guest calls through HVC or SMC: PSCI (confined to the caller's VM) and the SIS vendor
//! hypercalls (`sis_platform::hypercall`). Every argument is validated; bad ones get an SMCCC /
//! PSCI error code and change nothing.

use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::registers::{CNTFRQ_EL0, CNTPCT_EL0};
use sis_platform::hypercall as hc;
use sis_platform::layout::ipa;
use sis_platform::partition::{PARTITIONS, SYSTEM};
use smccc::psci;
use tock_registers::interfaces::Readable;

use shared_ring::audit::{AuditEntry, AuditError};

use hypervisor::ratelimit::{Limit, TokenBucket};

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
        hc::HV_AUDIT_APPEND => audit_append(v),
        hc::HV_VM_INFO => {
            v.regs.x[1] = v.vm.cfg.cpu_mask();
            v.regs.x[2] = v.vm.cfg.ram.size;
            v.vm.id as i64
        }
        _ => hc::NOT_SUPPORTED,
    };
    v.regs.x[0] = ret as u64;
}

/// Per-VM counters of the doorbell and audit hypercalls (the monitor's `vms` and `ring`).
pub struct CallStats {
    /// Doorbells refused by the rate limit.
    pub doorbells_limited: AtomicU64,
    /// Doorbells that found the target's doorbell already pending (no kick).
    pub doorbells_coalesced: AtomicU64,
    /// Audit appends refused because the op is reserved to the hypervisor.
    pub audit_denied: AtomicU64,
}

/// Counters per VM, indexed like the partition table.
pub static CALLS: [CallStats; PARTITIONS.len()] = [const {
    CallStats {
        doorbells_limited: AtomicU64::new(0),
        doorbells_coalesced: AtomicU64::new(0),
        audit_denied: AtomicU64::new(0),
    }
}; PARTITIONS.len()];

/// Each VM's doorbell token bucket (the caller's).
static DOORBELL_BUCKET: [spin::Mutex<TokenBucket>; PARTITIONS.len()] =
    [const { spin::Mutex::new(TokenBucket::new()) }; PARTITIONS.len()];

/// Appends the caller's audit entry to its own segment (`HV_AUDIT_APPEND`).
fn audit_append(v: &Vcpu) -> i64 {
    let id = v.vm.id;
    let args = [
        v.regs.x[1],
        v.regs.x[2],
        v.regs.x[3],
        v.regs.x[4],
        v.regs.x[5],
    ];
    let refused = match AuditEntry::from_hypercall_args(args) {
        Ok(e) => match audit::guest_append(id, &e) {
            Ok(seq) => return seq as i64,
            Err(e) => e,
        },
        Err(e) => {
            audit::guest_invalid(id);
            e
        }
    };
    if let AuditError::Forbidden(_) = refused {
        CALLS[id].audit_denied.fetch_add(1, Ordering::Relaxed);
        hc::DENIED
    } else {
        v.vm.stats.audit_rejected.fetch_add(1, Ordering::Relaxed);
        hc::INVALID_PARAMETER
    }
}

/// Raises the doorbell of the caller's channel to VM `target` (partition table) in `target`,
/// on the vCPU its distributor routes it to. Rate-limited per caller; a doorbell already
/// pending in the target is not raised again and kicks nobody. A VM with no channel to `target`
/// (itself included) may not ring it.
fn doorbell(v: &Vcpu, target: u64) -> i64 {
    let Some(peer) = vm::VMS.get(target as usize) else {
        return hc::INVALID_PARAMETER;
    };
    let Some(intid) = SYSTEM.doorbell(v.vm.id, peer.id) else {
        return hc::INVALID_PARAMETER;
    };
    if !peer.running() {
        return hc::TARGET_STOPPED;
    }
    let calls = &CALLS[v.vm.id];
    let limit = Limit {
        freq: CNTFRQ_EL0.get(),
        rate: hc::DOORBELL_RATE,
        burst: hc::DOORBELL_BURST,
    };
    if !DOORBELL_BUCKET[v.vm.id]
        .lock()
        .take(CNTPCT_EL0.get(), limit)
    {
        calls.doorbells_limited.fetch_add(1, Ordering::Relaxed);
        return hc::RATE_LIMITED;
    }
    v.vm.stats.doorbells_sent.fetch_add(1, Ordering::Relaxed);
    peer.stats
        .doorbells_received
        .fetch_add(1, Ordering::Relaxed);
    // Already pending on one of the peer's vCPUs (not yet in a list register): it will be
    // delivered, nothing to raise and no core to interrupt. Checked without the peer's lock.
    let (word, bit) = (intid as usize / 32, 1 << (intid % 32));
    if (0..peer.cfg.cores.len()).any(|i| peer.pending[i].word(word) & bit != 0) {
        calls.doorbells_coalesced.fetch_add(1, Ordering::Relaxed);
        return 0;
    }
    let t = peer.inner.lock().vgic.target(intid);
    peer.pending[t].raise(intid);
    peer.kick(t);
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
