//! Diagnostic commands both guests may include: counters, a heap exercise, and a check that
//! interrupts preserve the SIMD/FP context.

use alloc::vec::Vec;
use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};

use tock_registers::interfaces::{Readable, Writeable};

use sis_platform::layout::phys::NUM_CORES;

use super::{heap, irq, smp, timer, uart};
use crate::shell::{parse_u64, Command, Invocation};

/// The diagnostic command table.
pub static DIAG: [Command; 6] = [
    Command {
        name: "stats",
        help: "interrupt, UART, timer and heap counters",
        run: stats,
    },
    Command {
        name: "heaptest",
        help: "heaptest <MiB>: allocate, fill, check and free a block",
        run: heaptest,
    },
    Command {
        name: "fpcheck",
        help: "check that interrupts preserve q0-q31 and FPCR",
        run: fpcheck,
    },
    Command {
        name: "irqburst",
        help: "pend SGIs 8-15 at once (more than the list registers hold) and count them",
        run: irqburst,
    },
    Command {
        name: "hvprobe",
        help: "feed bad arguments to every hypercall and PSCI call; all must be refused",
        run: hvprobe,
    },
    Command {
        name: "poke",
        help: "poke <addr> <value>: write a u64 (tests W^X and read-only mappings)",
        run: poke,
    },
];

/// Per core: the timer handler scribbles over the SIMD/FP registers (set by `fpcheck`).
static CLOBBER: [AtomicBool; NUM_CORES] = [const { AtomicBool::new(false) }; NUM_CORES];

/// Timer-interrupt hook.
pub(crate) fn on_tick(core: usize) {
    if CLOBBER.get(core).is_some_and(|c| c.load(Ordering::Relaxed)) {
        clobber_simd();
    }
}

fn clobber_simd() {
    // SAFETY: only writes SIMD/FP registers and FPCR, all declared clobbered; the exception
    // vector restores the interrupted code's values (that is what `fpcheck` verifies).
    unsafe {
        asm!(
            "movi v0.16b, #0xe5", "movi v1.16b, #0xe5", "movi v2.16b, #0xe5", "movi v3.16b, #0xe5",
            "movi v4.16b, #0xe5", "movi v5.16b, #0xe5", "movi v6.16b, #0xe5", "movi v7.16b, #0xe5",
            "movi v8.16b, #0xe5", "movi v9.16b, #0xe5", "movi v10.16b, #0xe5", "movi v11.16b, #0xe5",
            "movi v12.16b, #0xe5", "movi v13.16b, #0xe5", "movi v14.16b, #0xe5", "movi v15.16b, #0xe5",
            "movi v16.16b, #0xe5", "movi v17.16b, #0xe5", "movi v18.16b, #0xe5", "movi v19.16b, #0xe5",
            "movi v20.16b, #0xe5", "movi v21.16b, #0xe5", "movi v22.16b, #0xe5", "movi v23.16b, #0xe5",
            "movi v24.16b, #0xe5", "movi v25.16b, #0xe5", "movi v26.16b, #0xe5", "movi v27.16b, #0xe5",
            "movi v28.16b, #0xe5", "movi v29.16b, #0xe5", "movi v30.16b, #0xe5", "movi v31.16b, #0xe5",
            "msr fpcr, xzr",
            out("v0") _, out("v1") _, out("v2") _, out("v3") _, out("v4") _, out("v5") _,
            out("v6") _, out("v7") _, out("v8") _, out("v9") _, out("v10") _, out("v11") _,
            out("v12") _, out("v13") _, out("v14") _, out("v15") _, out("v16") _, out("v17") _,
            out("v18") _, out("v19") _, out("v20") _, out("v21") _, out("v22") _, out("v23") _,
            out("v24") _, out("v25") _, out("v26") _, out("v27") _, out("v28") _, out("v29") _,
            out("v30") _, out("v31") _,
            options(nomem, nostack)
        );
    }
}

/// FPCR value `fpcheck` runs with: round towards zero (RMode = 0b11) and flush-to-zero.
const TEST_FPCR: u64 = (0b11 << 22) | (1 << 24);
/// Timer ticks `fpcheck` waits through.
const FPCHECK_TICKS: u64 = 5;

/// Byte each q register is filled with by `fpcheck`: q`n` = 0x10 + n.
fn pattern(n: usize) -> u128 {
    u128::from_ne_bytes([0x10 + n as u8; 16])
}

/// Loads a pattern into q0-q31 and a non-default FPCR, sleeps through several timer interrupts
/// whose handler overwrites them, and returns (q0-q31, FPCR) as seen afterwards.
fn simd_across_interrupts(core: usize) -> ([u128; 32], u64) {
    let mut q = [0u128; 32];
    let saved_fpcr: u64;
    let seen_fpcr: u64;
    let target = timer::ticks(core) + FPCHECK_TICKS;
    // SAFETY: uses only registers declared as operands or clobbers; writes the 512-byte `q`
    // array through x13; restores FPCR before finishing. IRQs are enabled here (shell context),
    // so the WFI loop really takes timer interrupts in the middle of this block.
    unsafe {
        asm!(
            "mrs {saved}, fpcr",
            "msr fpcr, {test}",
            "movi v0.16b, #0x10", "movi v1.16b, #0x11", "movi v2.16b, #0x12", "movi v3.16b, #0x13",
            "movi v4.16b, #0x14", "movi v5.16b, #0x15", "movi v6.16b, #0x16", "movi v7.16b, #0x17",
            "movi v8.16b, #0x18", "movi v9.16b, #0x19", "movi v10.16b, #0x1a", "movi v11.16b, #0x1b",
            "movi v12.16b, #0x1c", "movi v13.16b, #0x1d", "movi v14.16b, #0x1e", "movi v15.16b, #0x1f",
            "movi v16.16b, #0x20", "movi v17.16b, #0x21", "movi v18.16b, #0x22", "movi v19.16b, #0x23",
            "movi v20.16b, #0x24", "movi v21.16b, #0x25", "movi v22.16b, #0x26", "movi v23.16b, #0x27",
            "movi v24.16b, #0x28", "movi v25.16b, #0x29", "movi v26.16b, #0x2a", "movi v27.16b, #0x2b",
            "movi v28.16b, #0x2c", "movi v29.16b, #0x2d", "movi v30.16b, #0x2e", "movi v31.16b, #0x2f",
            "2:",
            "wfi",
            "ldr {t}, [{ticks}]",
            "cmp {t}, {target}",
            "b.lo 2b",
            "mrs {seen}, fpcr",
            "msr fpcr, {saved}",
            "stp q0, q1, [{out}, #0]", "stp q2, q3, [{out}, #32]",
            "stp q4, q5, [{out}, #64]", "stp q6, q7, [{out}, #96]",
            "stp q8, q9, [{out}, #128]", "stp q10, q11, [{out}, #160]",
            "stp q12, q13, [{out}, #192]", "stp q14, q15, [{out}, #224]",
            "stp q16, q17, [{out}, #256]", "stp q18, q19, [{out}, #288]",
            "stp q20, q21, [{out}, #320]", "stp q22, q23, [{out}, #352]",
            "stp q24, q25, [{out}, #384]", "stp q26, q27, [{out}, #416]",
            "stp q28, q29, [{out}, #448]", "stp q30, q31, [{out}, #480]",
            saved = out(reg) saved_fpcr,
            seen = out(reg) seen_fpcr,
            test = in(reg) TEST_FPCR,
            t = out(reg) _,
            ticks = in(reg) timer::ticks_ptr(core),
            target = in(reg) target,
            out = in(reg) q.as_mut_ptr(),
            out("v0") _, out("v1") _, out("v2") _, out("v3") _, out("v4") _, out("v5") _,
            out("v6") _, out("v7") _, out("v8") _, out("v9") _, out("v10") _, out("v11") _,
            out("v12") _, out("v13") _, out("v14") _, out("v15") _, out("v16") _, out("v17") _,
            out("v18") _, out("v19") _, out("v20") _, out("v21") _, out("v22") _, out("v23") _,
            out("v24") _, out("v25") _, out("v26") _, out("v27") _, out("v28") _, out("v29") _,
            out("v30") _, out("v31") _,
            options(nostack)
        );
    }
    let _ = saved_fpcr;
    (q, seen_fpcr)
}

fn fpcheck(inv: &mut Invocation<'_, '_>) {
    let core = smp::core_id();
    let before = timer::ticks(core);
    CLOBBER[core].store(true, Ordering::Relaxed);
    let (q, fpcr) = simd_across_interrupts(core);
    CLOBBER[core].store(false, Ordering::Relaxed);
    let taken = timer::ticks(core) - before;
    let mut bad = 0;
    for (n, &v) in q.iter().enumerate() {
        if v != pattern(n) {
            bad += 1;
            let _ = writeln!(
                inv.out,
                "fpcheck: q{n} = {v:#034x}, expected {:#034x}",
                pattern(n)
            );
        }
    }
    if fpcr & TEST_FPCR != TEST_FPCR {
        bad += 1;
        let _ = writeln!(
            inv.out,
            "fpcheck: FPCR = {fpcr:#x}, expected bits {TEST_FPCR:#x}"
        );
    }
    if bad == 0 {
        let _ = writeln!(
            inv.out,
            "fpcheck: ok (q0-q31 and FPCR intact across {taken} timer interrupts)"
        );
    } else {
        let _ = writeln!(
            inv.out,
            "fpcheck: FAILED ({bad} registers corrupted across {taken} interrupts)"
        );
    }
}

fn poke(inv: &mut Invocation<'_, '_>) {
    let [_, a, v] = inv.args else {
        let _ = writeln!(inv.out, "usage: poke <addr> <value>");
        return;
    };
    let (Some(addr), Some(value)) = (parse_u64(a), parse_u64(v)) else {
        let _ = writeln!(inv.out, "poke: bad number");
        return;
    };
    if addr % 8 != 0 {
        let _ = writeln!(inv.out, "poke: bad address (must be 8-byte aligned)");
        return;
    }
    // SAFETY: deliberately unchecked, like `peek`: writing where the guest may not (its own text,
    // a read-only region, another VM's memory) must fault, and that is what this is for.
    unsafe { super::mmio::write_u64(addr, value) };
    let _ = writeln!(inv.out, "{addr:#x} <- {value:#018x}");
}

fn stats(inv: &mut Invocation<'_, '_>) {
    let (unhandled, spurious) = irq::stats();
    let (rx_dropped, rx_errors) = uart::rx_stats();
    let h = heap::stats();
    match super::hypercall::version() {
        Ok(v) => {
            let _ = writeln!(inv.out, "hypervisor: ABI {}.{}", v >> 16, v & 0xffff);
        }
        Err(e) => {
            let _ = writeln!(inv.out, "hypervisor: {e}");
        }
    }
    let _ = writeln!(inv.out, "irq: unhandled {unhandled} spurious {spurious}");
    let _ = writeln!(
        inv.out,
        "uart: rx dropped {rx_dropped} rx errors {rx_errors}"
    );
    let _ = writeln!(
        inv.out,
        "shell: lines rejected {}",
        crate::shell::rejected_lines()
    );
    let online = smp::online_mask();
    for core in (0..NUM_CORES).filter(|c| online & (1 << c) != 0) {
        let _ = writeln!(
            inv.out,
            "timer: core {core} ticks {} late {}",
            timer::ticks(core),
            timer::late_ticks(core)
        );
    }
    let _ = writeln!(
        inv.out,
        "heap: {} KiB used of {} KiB, {} failed allocations",
        h.used / 1024,
        h.size / 1024,
        h.failures
    );
}

fn heaptest(inv: &mut Invocation<'_, '_>) {
    let mib = match inv.args {
        [_, n] => parse_u64(n),
        _ => None,
    };
    let Some(mib) = mib.filter(|&m| m > 0 && m <= 1 << 20) else {
        let _ = writeln!(inv.out, "usage: heaptest <MiB> (1 or more)");
        return;
    };
    let len = (mib << 20) as usize;
    let mut v: Vec<u64> = Vec::new();
    if v.try_reserve_exact(len / 8).is_err() {
        let h = heap::stats();
        let _ = writeln!(
            inv.out,
            "heaptest: cannot allocate {mib} MiB ({} KiB free)",
            (h.size - h.used) / 1024
        );
        return;
    }
    v.extend((0..len as u64 / 8).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
    let bad = v
        .iter()
        .enumerate()
        .filter(|&(i, &x)| x != (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .count();
    let base = v.as_ptr() as u64;
    drop(v);
    if bad == 0 {
        let _ = writeln!(
            inv.out,
            "heaptest: {mib} MiB at {base:#x} written, verified and freed"
        );
    } else {
        let _ = writeln!(inv.out, "heaptest: FAILED, {bad} words differ");
    }
}

/// First and last SGI `irqburst` uses (8 interrupts: twice QEMU's four list registers).
const BURST_FIRST: u32 = 8;
const BURST_LAST: u32 = 15;
static BURST_SEEN: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

fn burst_handler(intid: u32) {
    BURST_SEEN.fetch_or(1 << intid, Ordering::AcqRel);
}

/// Pends eight SGIs with interrupts masked, so the hypervisor must keep some of them pending
/// beyond its list registers and refill on the maintenance interrupt; then checks every one
/// arrived exactly once.
fn irqburst(_inv: &mut Invocation) {
    let core = smp::core_id();
    for intid in BURST_FIRST..=BURST_LAST {
        if let Err(e) = irq::enable(intid, &(burst_handler as irq::Handler)) {
            crate::println!("irqburst: cannot enable SGI {intid}: {e}");
            return;
        }
    }
    BURST_SEEN.store(0, Ordering::Release);
    let daif = aarch64_cpu::registers::DAIF.get();
    // SAFETY: masks IRQs on this core only while the SGIs are raised; restored below.
    unsafe { asm!("msr daifset, #2", options(nomem, nostack)) };
    for intid in BURST_FIRST..=BURST_LAST {
        super::gic::send_sgi(intid, core);
    }
    aarch64_cpu::registers::DAIF.set(daif);
    let want: u32 = (BURST_FIRST..=BURST_LAST).fold(0, |m, i| m | 1 << i);
    let start = timer::counter();
    let limit = timer::frequency(); // one second
    while BURST_SEEN.load(Ordering::Acquire) != want && timer::counter() - start < limit {
        super::sync::spin_yield();
    }
    let seen = BURST_SEEN.load(Ordering::Acquire);
    crate::println!(
        "irqburst: {}/{} SGIs delivered",
        seen.count_ones(),
        BURST_LAST - BURST_FIRST + 1
    );
}

/// One probe: a call with bad arguments and the error code it must return.
struct Probe {
    name: &'static str,
    function: u32,
    args: [u64; 3],
    expect: i64,
}

/// Calls every hypercall and PSCI function with arguments the hypervisor must refuse, and
/// checks the exact SMCCC/PSCI error code of each (nothing may change: no record written, no
/// core started).
fn hvprobe(_inv: &mut Invocation) {
    use sis_platform::hypercall as hc;
    use sis_platform::layout::ipa;
    use smccc::psci;
    let Ok((vm, mask, ram)) = super::hypercall::vm_info() else {
        crate::println!("hvprobe: no hypervisor (native boot)");
        return;
    };
    let own = u64::from(mask.trailing_zeros());
    let foreign = (0..NUM_CORES as u64)
        .find(|c| mask & (1 << c) == 0)
        .unwrap_or(NUM_CORES as u64);
    let probes = [
        Probe {
            name: "doorbell to itself",
            function: hc::HV_DOORBELL,
            args: [vm, 0, 0],
            expect: hc::INVALID_PARAMETER,
        },
        Probe {
            name: "doorbell to vm 7",
            function: hc::HV_DOORBELL,
            args: [7, 0, 0],
            expect: hc::INVALID_PARAMETER,
        },
        Probe {
            name: "audit op 999",
            function: hc::HV_AUDIT_APPEND,
            args: [999, 0, 0],
            expect: hc::INVALID_PARAMETER,
        },
        Probe {
            name: "audit status bit 3",
            function: hc::HV_AUDIT_APPEND,
            args: [1 | 0b1000 << 16, 0, 0],
            expect: hc::INVALID_PARAMETER,
        },
        Probe {
            name: "audit reserved bits",
            function: hc::HV_AUDIT_APPEND,
            args: [1 | 1 << 16, 1 << 40, 0],
            expect: hc::INVALID_PARAMETER,
        },
        Probe {
            name: "unknown vendor call",
            function: hc::VENDOR_HYP_BASE + 0xFF,
            args: [0, 0, 0],
            expect: hc::NOT_SUPPORTED,
        },
        Probe {
            name: "CPU_ON another VM's core",
            function: psci::PSCI_CPU_ON_64,
            args: [foreign, ipa::KERNEL_BASE, 0],
            expect: -2,
        },
        Probe {
            name: "CPU_ON entry outside RAM",
            function: psci::PSCI_CPU_ON_64,
            args: [own, ipa::RAM_BASE + ram, 0],
            expect: -9,
        },
        Probe {
            name: "AFFINITY_INFO another VM's core",
            function: psci::PSCI_AFFINITY_INFO_64,
            args: [foreign, 0, 0],
            expect: -2,
        },
        Probe {
            name: "AFFINITY_INFO level 1",
            function: psci::PSCI_AFFINITY_INFO_64,
            args: [own, 1, 0],
            expect: -2,
        },
    ];
    let mut ok = 0;
    for p in &probes {
        let mut args = [0u64; 17];
        args[..3].copy_from_slice(&p.args);
        let got = smccc::hvc64(p.function, args)[0] as i64;
        let verdict = if got == p.expect {
            ok += 1;
            "ok"
        } else {
            "FAIL"
        };
        crate::println!(
            "hvprobe: {}: {got} (expected {}) {verdict}",
            p.name,
            p.expect
        );
    }
    crate::println!("hvprobe: {ok}/{} refused as expected", probes.len());
}
