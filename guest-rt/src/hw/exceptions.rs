//! EL1 exception vectors: full context save (x0-x30, ELR, SPSR, q0-q31, FPCR, FPSR), IRQ
//! dispatch, and a fatal report for everything else.

use core::arch::global_asm;

use aarch64_cpu::registers::{ESR_EL1, FAR_EL1, VBAR_EL1};
use tock_registers::interfaces::{Readable, Writeable};

use super::{console, smp};
use sis_regs::esr::Esr;

/// Saved state of the interrupted code, laid out as the vector code stores it.
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    /// General-purpose registers x0..x30.
    pub x: [u64; 31],
    /// Return address.
    pub elr: u64,
    /// Saved PSTATE.
    pub spsr: u64,
    /// Floating-point status.
    pub fpsr: u64,
    /// Floating-point control.
    pub fpcr: u64,
    _pad: u64,
    /// SIMD/FP registers q0..q31.
    pub q: [u128; 32],
}

const FRAME_SIZE: usize = core::mem::size_of::<TrapFrame>();
const _: () = assert!(FRAME_SIZE == 800 && FRAME_SIZE.is_multiple_of(16));
const _: () = assert!(core::mem::offset_of!(TrapFrame, elr) == 248);
const _: () = assert!(core::mem::offset_of!(TrapFrame, fpsr) == 264);
const _: () = assert!(core::mem::offset_of!(TrapFrame, q) == 288);

/// Vector slot numbers (group * 4 + kind) the assembly passes in x1.
const CUR_SPX_SYNC: u64 = 4;
const CUR_SPX_IRQ: u64 = 5;

global_asm!(
    r#"
.macro SIS_VECTOR slot
    .balign 0x80
    sub sp, sp, #{frame}
    stp x0, x1, [sp, #0]
    mov x1, #\slot
    b __sis_trap_common
.endm

    .section .text.vectors, "ax"
    .balign 0x800
    .global __sis_vectors
__sis_vectors:
    SIS_VECTOR 0
    SIS_VECTOR 1
    SIS_VECTOR 2
    SIS_VECTOR 3
    SIS_VECTOR 4
    SIS_VECTOR 5
    SIS_VECTOR 6
    SIS_VECTOR 7
    SIS_VECTOR 8
    SIS_VECTOR 9
    SIS_VECTOR 10
    SIS_VECTOR 11
    SIS_VECTOR 12
    SIS_VECTOR 13
    SIS_VECTOR 14
    SIS_VECTOR 15

__sis_trap_common:
    stp x2, x3, [sp, #16]
    stp x4, x5, [sp, #32]
    stp x6, x7, [sp, #48]
    stp x8, x9, [sp, #64]
    stp x10, x11, [sp, #80]
    stp x12, x13, [sp, #96]
    stp x14, x15, [sp, #112]
    stp x16, x17, [sp, #128]
    stp x18, x19, [sp, #144]
    stp x20, x21, [sp, #160]
    stp x22, x23, [sp, #176]
    stp x24, x25, [sp, #192]
    stp x26, x27, [sp, #208]
    stp x28, x29, [sp, #224]
    str x30, [sp, #240]
    mrs x21, elr_el1
    mrs x22, spsr_el1
    stp x21, x22, [sp, #248]
    mrs x21, fpsr
    mrs x22, fpcr
    stp x21, x22, [sp, #264]
    stp q0, q1, [sp, #288]
    stp q2, q3, [sp, #320]
    stp q4, q5, [sp, #352]
    stp q6, q7, [sp, #384]
    stp q8, q9, [sp, #416]
    stp q10, q11, [sp, #448]
    stp q12, q13, [sp, #480]
    stp q14, q15, [sp, #512]
    stp q16, q17, [sp, #544]
    stp q18, q19, [sp, #576]
    stp q20, q21, [sp, #608]
    stp q22, q23, [sp, #640]
    stp q24, q25, [sp, #672]
    stp q26, q27, [sp, #704]
    stp q28, q29, [sp, #736]
    stp q30, q31, [sp, #768]
    mov x0, sp
    bl {trap}
    ldp q0, q1, [sp, #288]
    ldp q2, q3, [sp, #320]
    ldp q4, q5, [sp, #352]
    ldp q6, q7, [sp, #384]
    ldp q8, q9, [sp, #416]
    ldp q10, q11, [sp, #448]
    ldp q12, q13, [sp, #480]
    ldp q14, q15, [sp, #512]
    ldp q16, q17, [sp, #544]
    ldp q18, q19, [sp, #576]
    ldp q20, q21, [sp, #608]
    ldp q22, q23, [sp, #640]
    ldp q24, q25, [sp, #672]
    ldp q26, q27, [sp, #704]
    ldp q28, q29, [sp, #736]
    ldp q30, q31, [sp, #768]
    ldp x21, x22, [sp, #264]
    msr fpsr, x21
    msr fpcr, x22
    ldp x21, x22, [sp, #248]
    msr elr_el1, x21
    msr spsr_el1, x22
    ldp x0, x1, [sp, #0]
    ldp x2, x3, [sp, #16]
    ldp x4, x5, [sp, #32]
    ldp x6, x7, [sp, #48]
    ldp x8, x9, [sp, #64]
    ldp x10, x11, [sp, #80]
    ldp x12, x13, [sp, #96]
    ldp x14, x15, [sp, #112]
    ldp x16, x17, [sp, #128]
    ldp x18, x19, [sp, #144]
    ldp x20, x21, [sp, #160]
    ldp x22, x23, [sp, #176]
    ldp x24, x25, [sp, #192]
    ldp x26, x27, [sp, #208]
    ldp x28, x29, [sp, #224]
    ldr x30, [sp, #240]
    add sp, sp, #{frame}
    eret
"#,
    frame = const FRAME_SIZE,
    trap = sym trap,
);

extern "C" {
    static __sis_vectors: u8;
}

/// Points VBAR_EL1 of this core at the vector table.
pub(crate) fn install() {
    let base = (&raw const __sis_vectors) as u64;
    VBAR_EL1.set(base);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

const SLOT_NAMES: [&str; 16] = [
    "sync (EL1, SP_EL0)",
    "IRQ (EL1, SP_EL0)",
    "FIQ (EL1, SP_EL0)",
    "SError (EL1, SP_EL0)",
    "sync",
    "IRQ",
    "FIQ",
    "SError",
    "sync from EL0",
    "IRQ from EL0",
    "FIQ from EL0",
    "SError from EL0",
    "sync from EL0 (AArch32)",
    "IRQ from EL0 (AArch32)",
    "FIQ from EL0 (AArch32)",
    "SError from EL0 (AArch32)",
];

extern "C" fn trap(frame: &mut TrapFrame, slot: u64) {
    match slot {
        CUR_SPX_IRQ => super::irq::dispatch(),
        CUR_SPX_SYNC if super::probe_cmds::catch_undefined(frame) => {}
        _ => fatal(frame, slot),
    }
}

/// Reports an exception we cannot handle, then stops this core.
fn fatal(frame: &TrapFrame, slot: u64) -> ! {
    let esr = Esr(ESR_EL1.get());
    let what = SLOT_NAMES.get(slot as usize).copied().unwrap_or("?");
    let class = if slot == CUR_SPX_SYNC {
        esr.class_name()
    } else {
        "unexpected vector"
    };
    let far = FAR_EL1.get();
    console::emergency(format_args!(
        "\n*** FATAL {what} exception on core {core}: {class}\n    ESR=0x{esr:08x} (EC=0x{ec:02x}) FAR=0x{far:016x} ELR=0x{elr:016x} SPSR=0x{spsr:08x}\n",
        core = smp::core_id(),
        esr = esr.0,
        ec = esr.ec(),
        elr = frame.elr,
        spsr = frame.spsr,
    ));
    if let (CUR_SPX_SYNC, Some(fault)) = (slot, esr.fault()) {
        let access = if esr.is_write() { "write" } else { "read" };
        let kind = fault.kind;
        match fault.level {
            Some(l) => console::emergency(format_args!(
                "    {access} of 0x{far:x}: {kind}, level {l}\n"
            )),
            None => console::emergency(format_args!("    {access} of 0x{far:x}: {kind}\n")),
        }
    }
    console::emergency(format_args!(
        "    x0=0x{:x} x1=0x{:x} x29=0x{:x} x30=0x{:x}\n*** core {} halted\n",
        frame.x[0],
        frame.x[1],
        frame.x[29],
        frame.x[30],
        smp::core_id()
    ));
    super::halt_core()
}
