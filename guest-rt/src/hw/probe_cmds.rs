//! Trap-surface probes both guests include (their own command table): `mmioprobe` (one access
//! of any width at any offset of an emulated device), `sysprobe` (registers the hypervisor
//! traps: PMU, debug, IMPDEF, set/way maintenance, ACTLR_EL1) and `bootregs` (the EL1 and
//! FP/SIMD state each core found at entry). Argument parsing and judgement are in
//! [`crate::probe`].

use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use aarch64_cpu::registers::ESR_EL1;
use tock_registers::interfaces::Readable;

use sis_platform::layout::phys::NUM_CORES;

use super::{exceptions::TrapFrame, smp};
use crate::probe::{parse_mmioprobe, EntryState, MmioProbe, Region};
use crate::shell::{Command, Invocation};

/// The probe command table.
pub static PROBE: [Command; 4] = [
    Command {
        name: "mmioprobe",
        help:
            "mmioprobe <gicd|gicr|gicr-sgi|uart|pcicfg> <offset> <1|2|4|8> [value]: one raw device access",
        run: mmioprobe,
    },
    Command {
        name: "sysprobe",
        help: "touch PMU, debug, IMPDEF, set/way and ACTLR registers; show what each gets",
        run: sysprobe,
    },
    Command {
        name: "execprobe",
        help:
            "execprobe <ring|audit|model>: map a shared region executable at EL1 and jump into it",
        run: execprobe,
    },
    Command {
        name: "bootregs",
        help: "EL1 and FP/SIMD registers each core found at entry that were not in reset state",
        run: bootregs,
    },
];

/// What each core found at entry, written by the boot assembly (`boot.rs`) before any Rust code
/// runs on that core, and only read afterwards.
#[repr(C, align(16))]
pub(crate) struct EntryStates(pub(crate) core::cell::UnsafeCell<[EntryState; NUM_CORES]>);
// SAFETY: each core's slot is written once by that core's entry code, before it runs any Rust
// code and before `bootregs` can run; later accesses are reads.
unsafe impl Sync for EntryStates {}
/// The entry-state slots (symbol used by the boot assembly).
pub(crate) static ENTRY_STATES: EntryStates =
    EntryStates(core::cell::UnsafeCell::new([EntryState::ZERO; NUM_CORES]));

fn mmioprobe(inv: &mut Invocation<'_, '_>) {
    let p = match parse_mmioprobe(inv.args) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(inv.out, "{e}");
            return;
        }
    };
    let what = if p.write.is_some() { "write" } else { "read" };
    // Announce first: an access the hypervisor refuses stops this VM.
    crate::println!(
        "mmioprobe: {}-byte {what} at {}+{:#x} ({:#x})",
        p.width,
        p.device.name(),
        p.offset,
        p.addr()
    );
    // SAFETY: deliberately a raw device access (that is the command's purpose); the address is
    // inside an emulated device frame (checked by the parser), which the stage-1 tables map as
    // device memory. The hypervisor decides what it does.
    let value = unsafe { access(&p) };
    match p.write {
        Some(v) => crate::println!("mmioprobe: wrote {v:#x}"),
        None => crate::println!("mmioprobe: read {value:#x}"),
    }
}

/// Performs the access with one load or store of the probe's width.
///
/// # Safety
/// `p.addr()` must be a device address whose access has no effect on this guest's memory.
unsafe fn access(p: &MmioProbe) -> u64 {
    let a = p.addr();
    let mut v = p.write.unwrap_or(0);
    // SAFETY: forwarded to the caller; each arm is a single plain load or store.
    unsafe {
        match (p.width, p.write.is_some()) {
            (1, false) => {
                asm!("ldrb {v:w}, [{a}]", a = in(reg) a, v = out(reg) v, options(nostack))
            }
            (2, false) => {
                asm!("ldrh {v:w}, [{a}]", a = in(reg) a, v = out(reg) v, options(nostack))
            }
            (4, false) => asm!("ldr {v:w}, [{a}]", a = in(reg) a, v = out(reg) v, options(nostack)),
            (8, false) => asm!("ldr {v}, [{a}]", a = in(reg) a, v = out(reg) v, options(nostack)),
            (1, true) => asm!("strb {v:w}, [{a}]", a = in(reg) a, v = in(reg) v, options(nostack)),
            (2, true) => asm!("strh {v:w}, [{a}]", a = in(reg) a, v = in(reg) v, options(nostack)),
            (4, true) => asm!("str {v:w}, [{a}]", a = in(reg) a, v = in(reg) v, options(nostack)),
            _ => asm!("str {v}, [{a}]", a = in(reg) a, v = in(reg) v, options(nostack)),
        }
    }
    v
}

/// Per core: a probe expects an Undefined Instruction exception from its next instruction.
static ARMED: [AtomicBool; NUM_CORES] = [const { AtomicBool::new(false) }; NUM_CORES];
/// Per core: ESR_EL1 of the caught exception (bit 63 set when one was caught).
static CAUGHT: [AtomicU64; NUM_CORES] = [const { AtomicU64::new(0) }; NUM_CORES];
const CAUGHT_FLAG: u64 = 1 << 63;

/// Sync-exception hook (from the vector code): if this core armed a probe and the exception is
/// an UNDEFINED instruction, records ESR_EL1, skips the instruction and returns true.
pub(crate) fn catch_undefined(frame: &mut TrapFrame) -> bool {
    let core = smp::core_id();
    let Some(armed) = ARMED.get(core) else {
        return false;
    };
    let esr = ESR_EL1.get();
    if !armed.load(Ordering::Acquire) || sis_regs::esr::Esr(esr).ec() != sis_regs::esr::ec::UNKNOWN
    {
        return false;
    }
    armed.store(false, Ordering::Release);
    CAUGHT[core].store(esr | CAUGHT_FLAG, Ordering::Release);
    frame.elr += 4;
    true
}

/// Runs `f` (one system-register instruction) with the UNDEFINED catch armed; returns its
/// value, or ESR_EL1 if the instruction was UNDEFINED.
fn try_insn(f: fn() -> u64) -> Result<u64, u64> {
    let core = smp::core_id();
    CAUGHT[core].store(0, Ordering::Release);
    ARMED[core].store(true, Ordering::Release);
    let v = f();
    ARMED[core].store(false, Ordering::Release);
    let caught = CAUGHT[core].load(Ordering::Acquire);
    if caught & CAUGHT_FLAG != 0 {
        Err(caught & !CAUGHT_FLAG)
    } else {
        Ok(v)
    }
}

macro_rules! probe_read {
    ($name:ident, $reg:literal) => {
        fn $name() -> u64 {
            let v: u64;
            // SAFETY: reads one system register; an UNDEFINED exception is caught and skipped.
            unsafe { asm!(concat!("mrs {v}, ", $reg), v = out(reg) v, options(nostack)) };
            v
        }
    };
}

macro_rules! probe_write {
    ($name:ident, $insn:literal, $value:expr) => {
        fn $name() -> u64 {
            // SAFETY: one harmless write (counters stay disabled, breakpoint 0 stays disabled,
            // the cache line operation only cleans); an UNDEFINED exception is caught and skipped.
            unsafe { asm!(concat!($insn, ", {v}"), v = in(reg) $value, options(nostack)) };
            0
        }
    };
}

probe_read!(pmcr, "pmcr_el0");
probe_read!(pmccntr, "pmccntr_el0");
probe_write!(pmcntenset, "msr pmcntenset_el0", 1u64 << 31);
probe_read!(pmuserenr, "pmuserenr_el0");
probe_read!(mdscr, "mdscr_el1");
probe_write!(dbgbvr0, "msr dbgbvr0_el1", 0u64);
probe_read!(mdccsr, "mdccsr_el0");
probe_read!(oslsr, "oslsr_el1");
probe_read!(mdrar, "mdrar_el1");
probe_read!(cpuactlr, "s3_1_c15_c2_0");
probe_read!(l2ctlr, "s3_1_c11_c0_2");
probe_write!(dc_cisw, "dc cisw", 0u64);
probe_read!(actlr, "actlr_el1");
probe_write!(actlr_write, "msr actlr_el1", 0u64);

/// One `sysprobe` access.
struct SysProbe {
    /// Register group (`pmu`, `debug`, `impdef`, `setway`, `actlr`).
    group: &'static str,
    /// The access, for the output.
    what: &'static str,
    /// The one instruction.
    insn: fn() -> u64,
}

/// The probes.
const SYSPROBES: [SysProbe; 14] = [
    SysProbe {
        group: "pmu",
        what: "PMCR_EL0 read",
        insn: pmcr,
    },
    SysProbe {
        group: "pmu",
        what: "PMCCNTR_EL0 read",
        insn: pmccntr,
    },
    SysProbe {
        group: "pmu",
        what: "PMCNTENSET_EL0 write",
        insn: pmcntenset,
    },
    SysProbe {
        group: "pmu",
        what: "PMUSERENR_EL0 read",
        insn: pmuserenr,
    },
    SysProbe {
        group: "debug",
        what: "MDSCR_EL1 read",
        insn: mdscr,
    },
    SysProbe {
        group: "debug",
        what: "DBGBVR0_EL1 write",
        insn: dbgbvr0,
    },
    SysProbe {
        group: "debug",
        what: "MDCCSR_EL0 read",
        insn: mdccsr,
    },
    SysProbe {
        group: "debug",
        what: "OSLSR_EL1 read",
        insn: oslsr,
    },
    SysProbe {
        group: "debug",
        what: "MDRAR_EL1 read",
        insn: mdrar,
    },
    SysProbe {
        group: "impdef",
        what: "CPUACTLR_EL1 read",
        insn: cpuactlr,
    },
    SysProbe {
        group: "impdef",
        what: "L2CTLR_EL1 read",
        insn: l2ctlr,
    },
    SysProbe {
        group: "setway",
        what: "DC CISW",
        insn: dc_cisw,
    },
    SysProbe {
        group: "actlr",
        what: "ACTLR_EL1 read",
        insn: actlr,
    },
    SysProbe {
        group: "actlr",
        what: "ACTLR_EL1 write",
        insn: actlr_write,
    },
];

fn sysprobe(inv: &mut Invocation<'_, '_>) {
    let mut undefined = 0;
    for SysProbe { group, what, insn } in SYSPROBES {
        match try_insn(insn) {
            Ok(v) => {
                let _ = writeln!(inv.out, "sysprobe: {group} {what}: {v:#x}");
            }
            Err(esr) => {
                undefined += 1;
                let _ = writeln!(
                    inv.out,
                    "sysprobe: {group} {what}: undefined (ESR_EL1 {esr:#010x})"
                );
            }
        }
    }
    let _ = writeln!(
        inv.out,
        "sysprobe: {} probes, {undefined} undefined",
        SYSPROBES.len()
    );
}

fn execprobe(inv: &mut Invocation<'_, '_>) {
    let region = match inv.args {
        [_, r] => Region::parse(r),
        _ => None,
    };
    let Some(region) = region else {
        let _ = writeln!(inv.out, "usage: execprobe <ring|audit|model>");
        return;
    };
    let Some(ipa) = region.base(super::boot_info()) else {
        let _ = writeln!(inv.out, "execprobe: this VM has no such region");
        return;
    };
    let va = super::mmu::exec_alias() + ipa;
    crate::println!("execprobe: jumping to {va:#x} (IPA {ipa:#x})");
    // SAFETY: deliberately executes data of a shared region through an executable stage-1 alias
    // (the command's purpose): the hypervisor's stage-2 must refuse the fetch and stop this VM.
    // If it does not, whatever the data decodes to runs here.
    unsafe { asm!("blr {t}", t = in(reg) va, clobber_abi("C")) };
    crate::println!("execprobe: returned");
}

fn bootregs(inv: &mut Invocation<'_, '_>) {
    let online = smp::online_mask();
    for core in (0..NUM_CORES).filter(|c| online & (1 << c) != 0) {
        // SAFETY: the slot was written by that core's entry code before it came online (it is
        // in the online mask), and is never written again.
        let s = unsafe { &(*ENTRY_STATES.0.get())[core] };
        if s.clean() {
            let _ = writeln!(inv.out, "bootregs: core {core}: clean");
            continue;
        }
        let _ = write!(inv.out, "bootregs: core {core}: left over:");
        for (name, v) in s.leftovers() {
            let _ = write!(inv.out, " {name}={v:#x}");
        }
        let _ = writeln!(inv.out, " q-registers nonzero={}", s.dirty_q());
    }
}
