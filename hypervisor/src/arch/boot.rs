//! EL2 entry points, the exception vectors and the guest world switch.
//!
//! `_start`: core 0 from QEMU (x0 = 0, DTB at RAM base). `_secondary_entry`: cores started by
//! PSCI `CPU_ON` with their core index as context id. `run_guest` enters a guest and returns,
//! KVM-style, when the guest traps or a physical interrupt arrives, with the exit kind.

/// Size of each core's EL2 stack (`hypervisor/build.rs` reserves one per core).
pub const STACK_SIZE: usize = sis_platform::layout::phys::HV_STACK_SIZE as usize;

/// Guest general-purpose state saved across a world switch. EL1 system registers, FP/SIMD and
/// timer state are not saved: each core runs one vCPU and the hypervisor (built soft-float)
/// never touches them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GuestRegs {
    /// x0-x30.
    pub x: [u64; 31],
    /// Guest PC (ELR_EL2).
    pub elr: u64,
    /// Guest PSTATE (SPSR_EL2).
    pub spsr: u64,
}

impl GuestRegs {
    /// Reads register `n` (31 = xzr).
    pub fn get(&self, n: usize) -> u64 {
        if n < 31 {
            self.x[n]
        } else {
            0
        }
    }

    /// Writes register `n` (31 = xzr, ignored).
    pub fn set(&mut self, n: usize, v: u64) {
        if n < 31 {
            self.x[n] = v;
        }
    }
}

/// Exit kinds returned by `run_guest` (vector offset / 0x80 - 8).
pub mod exit {
    /// Synchronous exception from the guest.
    pub const SYNC: u64 = 0;
    /// Physical IRQ.
    pub const IRQ: u64 = 1;
    // 2 = FIQ, 3 = SError, 4 = anything from AArch32: all stop the VM.
}

core::arch::global_asm!(
    r#"
.section .text.boot, "ax"
.global _start
_start:
    mrs     x1, CurrentEL
    cmp     x1, #(2 << 2)
    b.ne    2f
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    3f
    str     xzr, [x1], #8
    b       1b
2:  wfe
    b       2b

.global _secondary_entry
_secondary_entry:
3:  adrp    x1, __stacks_end
    add     x1, x1, :lo12:__stacks_end
    mov     x2, #{stack}
    mul     x2, x2, x0
    sub     sp, x1, x2
    adrp    x1, hv_vectors
    add     x1, x1, :lo12:hv_vectors
    msr     vbar_el2, x1
    isb
    bl      hv_entry
    b       2b

.macro GUEST_EXIT kind
    .balign 0x80
    sub     sp, sp, #16
    stp     x0, x1, [sp]
    mov     x1, #\kind
    b       guest_exit
.endm

.macro HV_FAULT kind
    .balign 0x80
    mov     x0, #\kind
    b       hv_fault_entry
.endm

.section .text
.balign 0x800
.global hv_vectors
hv_vectors:
    HV_FAULT 0
    HV_FAULT 1
    HV_FAULT 2
    HV_FAULT 3
    HV_FAULT 4
    HV_FAULT 5
    HV_FAULT 6
    HV_FAULT 7
    GUEST_EXIT 0
    GUEST_EXIT 1
    GUEST_EXIT 2
    GUEST_EXIT 3
    GUEST_EXIT 4
    GUEST_EXIT 4
    GUEST_EXIT 4
    GUEST_EXIT 4

hv_fault_entry:
    mrs     x1, esr_el2
    mrs     x2, elr_el2
    mrs     x3, far_el2
    bl      hv_fault
    b       2b

// x0 = &mut GuestRegs. Saves the host's callee-saved registers, enters the guest.
.global run_guest
run_guest:
    sub     sp, sp, #96
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    str     x0, [sp, #-16]!
    ldp     x1, x2, [x0, #248]
    msr     elr_el2, x1
    msr     spsr_el2, x2
    ldp     x2, x3, [x0, #16]
    ldp     x4, x5, [x0, #32]
    ldp     x6, x7, [x0, #48]
    ldp     x8, x9, [x0, #64]
    ldp     x10, x11, [x0, #80]
    ldp     x12, x13, [x0, #96]
    ldp     x14, x15, [x0, #112]
    ldp     x16, x17, [x0, #128]
    ldp     x18, x19, [x0, #144]
    ldp     x20, x21, [x0, #160]
    ldp     x22, x23, [x0, #176]
    ldp     x24, x25, [x0, #192]
    ldp     x26, x27, [x0, #208]
    ldp     x28, x29, [x0, #224]
    ldr     x30, [x0, #240]
    ldp     x0, x1, [x0, #0]
    eret

// On entry: guest x0/x1 at [sp], exit kind in x1, &mut GuestRegs at [sp + 16].
guest_exit:
    ldr     x0, [sp, #16]
    stp     x2, x3, [x0, #16]
    stp     x4, x5, [x0, #32]
    stp     x6, x7, [x0, #48]
    stp     x8, x9, [x0, #64]
    stp     x10, x11, [x0, #80]
    stp     x12, x13, [x0, #96]
    stp     x14, x15, [x0, #112]
    stp     x16, x17, [x0, #128]
    stp     x18, x19, [x0, #144]
    stp     x20, x21, [x0, #160]
    stp     x22, x23, [x0, #176]
    stp     x24, x25, [x0, #192]
    stp     x26, x27, [x0, #208]
    stp     x28, x29, [x0, #224]
    str     x30, [x0, #240]
    ldp     x2, x3, [sp]
    stp     x2, x3, [x0, #0]
    mrs     x2, elr_el2
    mrs     x3, spsr_el2
    stp     x2, x3, [x0, #248]
    add     sp, sp, #32
    mov     x0, x1
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    add     sp, sp, #96
    ret
"#,
    stack = const STACK_SIZE,
);

unsafe extern "C" {
    /// Enters the guest described by `regs` until it exits; returns the exit kind.
    pub fn run_guest(regs: *mut GuestRegs) -> u64;
    /// Entry point for cores started with PSCI `CPU_ON` (context id = core index).
    pub fn _secondary_entry();
}

const _: () = assert!(core::mem::offset_of!(GuestRegs, elr) == 248);
const _: () = assert!(core::mem::size_of::<GuestRegs>() == 264);
