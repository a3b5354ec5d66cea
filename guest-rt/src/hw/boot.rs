//! Boot: `_start` and the secondary-core entry (assembly), then the Rust bring-up of the boot
//! core and of each secondary core.

use core::arch::global_asm;
use core::cell::UnsafeCell;
use core::mem::size_of;

use sis_platform::layout::{ipa, model_region, native, phys::NUM_CORES};
use sis_platform::BootInfo;

use super::{console, exceptions, gic, heap, mmu, smp, sync, timer, uart};
use crate::pagetable::Image;
use crate::{bootcheck, report, GuestConfig};

/// Stack per core.
pub const STACK_SIZE: usize = 256 * 1024;

#[repr(C, align(16))]
struct Stacks(UnsafeCell<[[u8; STACK_SIZE]; NUM_CORES]>);
// SAFETY: each core only ever uses its own slice, selected by its core index in `_start` or
// `__sis_secondary_start`; Rust code never touches the array.
unsafe impl Sync for Stacks {}
static STACKS: Stacks = Stacks(UnsafeCell::new([[0; STACK_SIZE]; NUM_CORES]));

global_asm!(
    r#"
.macro SIS_CORE_SETUP core
    // Stack: top of this core's slice of STACKS.
    adrp x9, {stacks}
    add x9, x9, :lo12:{stacks}
    mov x10, #{stack_size}
    add x11, \core, #1
    madd x9, x10, x11, x9
    mov sp, x9
    // FP/SIMD usable at EL1 (CPACR_EL1.FPEN = 0b11) before any Rust code runs.
    mov x9, #(3 << 20)
    msr cpacr_el1, x9
    isb
.endm

// Records the EL1 state this core found at entry in its ENTRY_STATES slot (crate::probe,
// `bootregs`): system registers before SIS_CORE_SETUP writes CPACR_EL1, then (with FP/SIMD
// enabled) FPCR, FPSR and q0-q31. Uses x9-x11 only.
.macro SIS_ENTRY_SLOT core
    adrp x9, {entry}
    add x9, x9, :lo12:{entry}
    mov x10, #{entry_size}
    madd x9, x10, \core, x9
.endm
.macro SIS_RECORD_SYSREGS core
    SIS_ENTRY_SLOT \core
    mrs x10, sctlr_el1
    mrs x11, cpacr_el1
    stp x10, x11, [x9, #0]
    mrs x10, vbar_el1
    mrs x11, ttbr0_el1
    stp x10, x11, [x9, #16]
    mrs x10, ttbr1_el1
    mrs x11, tcr_el1
    stp x10, x11, [x9, #32]
    mrs x10, mair_el1
    mrs x11, amair_el1
    stp x10, x11, [x9, #48]
    mrs x10, contextidr_el1
    mrs x11, tpidr_el1
    stp x10, x11, [x9, #64]
    mrs x10, tpidr_el0
    mrs x11, tpidrro_el0
    stp x10, x11, [x9, #80]
    mrs x10, sp_el0
    mov x11, sp
    stp x10, x11, [x9, #96]
    mrs x10, elr_el1
    mrs x11, spsr_el1
    stp x10, x11, [x9, #112]
    mrs x10, esr_el1
    mrs x11, far_el1
    stp x10, x11, [x9, #128]
    mrs x10, afsr0_el1
    mrs x11, afsr1_el1
    stp x10, x11, [x9, #144]
    mrs x10, par_el1
    mrs x11, cntkctl_el1
    stp x10, x11, [x9, #160]
    mrs x10, cntv_ctl_el0
    mrs x11, cntv_cval_el0
    stp x10, x11, [x9, #176]
.endm
.macro SIS_RECORD_FP core
    SIS_ENTRY_SLOT \core
    mrs x10, fpcr
    mrs x11, fpsr
    stp x10, x11, [x9, #{fpcr}]
    add x9, x9, #{q}
    stp q0, q1, [x9, #0]
    stp q2, q3, [x9, #32]
    stp q4, q5, [x9, #64]
    stp q6, q7, [x9, #96]
    stp q8, q9, [x9, #128]
    stp q10, q11, [x9, #160]
    stp q12, q13, [x9, #192]
    stp q14, q15, [x9, #224]
    stp q16, q17, [x9, #256]
    stp q18, q19, [x9, #288]
    stp q20, q21, [x9, #320]
    stp q22, q23, [x9, #352]
    stp q24, q25, [x9, #384]
    stp q26, q27, [x9, #416]
    stp q28, q29, [x9, #448]
    stp q30, q31, [x9, #480]
.endm

    .section .text.boot, "ax"
    .global _start
_start:
    msr daifset, #0xf
    mov x19, x0
    mrs x20, mpidr_el1
    and x20, x20, #0xff
    cmp x20, #{ncores}
    b.hs 9f
    // Zero .bss (8-byte aligned by the linker script).
    adrp x2, __bss_start
    add x2, x2, :lo12:__bss_start
    adrp x3, __bss_end
    add x3, x3, :lo12:__bss_end
1:  cmp x2, x3
    b.hs 2f
    str xzr, [x2], #8
    b 1b
2:  SIS_RECORD_SYSREGS x20
    SIS_CORE_SETUP x20
    SIS_RECORD_FP x20
    mov x0, x19
    mov x1, x20
    bl {boot}
9:  wfe
    b 9b

    .global __sis_secondary_start
__sis_secondary_start:
    msr daifset, #0xf
    mov x20, x0
    cmp x20, #{ncores}
    b.hs 9b
    SIS_RECORD_SYSREGS x20
    SIS_CORE_SETUP x20
    SIS_RECORD_FP x20
    mov x0, x20
    bl {secondary}
    b 9b
"#,
    stacks = sym STACKS,
    stack_size = const STACK_SIZE,
    ncores = const NUM_CORES,
    boot = sym rust_boot,
    secondary = sym rust_secondary,
    entry = sym super::probe_cmds::ENTRY_STATES,
    entry_size = const size_of::<crate::probe::EntryState>(),
    fpcr = const crate::probe::ENTRY_FPCR_OFFSET,
    q = const crate::probe::ENTRY_Q_OFFSET,
);

extern "C" {
    static __sis_secondary_start: u8;
    static __image_end: u8;
    static __text_end: u8;
    static __rodata_end: u8;
}

extern "Rust" {
    static __SIS_GUEST_CONFIG: GuestConfig;
    fn __sis_guest_main(info: &'static BootInfo) -> !;
}

/// Address PSCI CPU_ON starts secondary cores at (context id = core index).
pub(crate) fn secondary_entry() -> u64 {
    (&raw const __sis_secondary_start) as u64
}

/// First byte after the image, its .bss and the stacks.
pub fn image_end() -> u64 {
    (&raw const __image_end) as u64
}

/// The image's section boundaries, from the linker script.
fn image_layout() -> Image {
    Image {
        start: ipa::KERNEL_BASE,
        text_end: (&raw const __text_end) as u64,
        rodata_end: (&raw const __rodata_end) as u64,
        end: image_end(),
    }
}

/// Set once by the boot core, before the guest's code or any other core runs.
static BOOT_INFO: spin::Once<BootInfo> = spin::Once::new();

/// The boot information this guest runs with (from the hypervisor, or built natively).
pub fn boot_info() -> &'static BootInfo {
    BOOT_INFO
        .get()
        .expect("boot info is set before any guest code runs")
}

/// Reads the hypervisor's block at `x0` (MMU still off), if it carries the magic.
fn hypervisor_boot_info(x0: u64) -> Option<BootInfo> {
    let addr = if x0 == 0 { ipa::BOOT_INFO } else { x0 };
    let in_range = addr >= ipa::RAM_BASE && addr + size_of::<BootInfo>() as u64 <= ipa::KERNEL_BASE;
    if !in_range || addr % 8 != 0 {
        return None;
    }
    // SAFETY: `addr` is 8-aligned guest RAM below the kernel image (checked above).
    let info = unsafe { (addr as *const BootInfo).read_volatile() };
    info.is_valid().then_some(info)
}

/// What running without the hypervisor looks like: RAM and cores from the device tree at
/// `dtb` (MMU already on).
fn native_boot_info(
    config: &GuestConfig,
    dtb: u64,
    core: usize,
) -> (BootInfo, Option<&'static str>) {
    let mut info = BootInfo::native(native::RAM_SIZE);
    let mut note = None;
    // SAFETY: the DTB lies in guest RAM (mapped); `from_ptr` checks the header magic and size
    // before reading further.
    match unsafe { fdt::Fdt::from_ptr(dtb as *const u8) } {
        Ok(tree) => {
            let ram = tree
                .memory()
                .regions()
                .find(|r| r.starting_address as u64 == ipa::RAM_BASE)
                .and_then(|r| r.size);
            match ram {
                Some(size) => info.ram_size = size as u64,
                None => {
                    note = Some("no RAM node at 0x40000000 in the device tree; assuming 512 MiB")
                }
            }
            let mut mask = 0u64;
            for cpu in tree.cpus() {
                let aff0 = cpu.ids().first() & 0xff;
                if aff0 < NUM_CORES {
                    mask |= 1 << aff0;
                }
            }
            if config.native_all_cores && mask != 0 {
                info.cpu_mask = mask | (1 << core);
            }
        }
        Err(_) => {
            // QEMU only leaves a DTB below an ELF kernel if it fits in the gap, and the `virt`
            // tree (1 MiB) does not fit below 0x40080000.
            note = Some("native boot without a device tree: assuming 512 MiB RAM");
            if config.native_all_cores {
                info.cpu_mask = psci_present_cores() | (1 << core);
            }
        }
    }
    if !config.native_all_cores {
        info.cpu_mask = 1 << core;
    }
    info.boot_cpu = core as u64;
    let n = config.name.len().min(info.name.len() - 1);
    info.name = [0; 16];
    info.name[..n].copy_from_slice(&config.name.as_bytes()[..n]);
    info.timer_freq = timer::frequency();
    if let Some((base, size)) = native_model_region(info.ram_size) {
        info.model_base = base;
        info.model_size = size;
    }
    (info, note)
}

/// The model region `run.sh --native` places inside RAM (`sis_platform::layout::native`), if
/// RAM of `ram_size` holds it and its manifest magic is there.
fn native_model_region(ram_size: u64) -> Option<(u64, u64)> {
    let (base, size) = (native::MODEL_BASE, native::MODEL_SIZE);
    if base + size > ipa::RAM_BASE + ram_size {
        return None;
    }
    let magic = base + model_region::MANIFEST_OFFSET;
    // SAFETY: an aligned word of RAM (checked above) inside the first GiB, which the boot
    // tables map as normal memory; nothing else runs yet.
    let word = unsafe { (magic as *const u64).read_volatile() };
    (word == model_region::MANIFEST_MAGIC).then_some((base, size))
}

/// Cores PSCI knows about (AFFINITY_INFO answers for them), for native boots without a DTB.
fn psci_present_cores() -> u64 {
    (0..NUM_CORES)
        .filter(|&c| super::psci::affinity_info(c as u64).is_ok())
        .fold(0, |m, c| m | (1 << c))
}

/// Invalidates the data-cache lines covering the image. `_start` zeroed .bss and the page
/// tables are written with the MMU (and so the caches) off, straight to memory; a stale line left
/// from before this boot must not shadow them once the caches are on.
fn invalidate_image_dcache() {
    let ctr: u64;
    // SAFETY: reads the cache type register.
    unsafe {
        core::arch::asm!("mrs {c}, ctr_el0", c = out(reg) ctr, options(nomem, nostack, preserves_flags))
    };
    let line = 4u64 << ((ctr >> 16) & 0xf);
    let mut addr = ipa::KERNEL_BASE & !(line - 1);
    while addr < image_end() {
        // SAFETY: invalidates cache lines of the guest's own image; with the caches off every
        // write so far went to memory, so nothing is lost.
        unsafe {
            core::arch::asm!("dc ivac, {a}", a = in(reg) addr, options(nostack, preserves_flags))
        };
        addr += line;
    }
    aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::SY);
}

/// Boot core, MMU off, stack set, .bss zeroed.
extern "C" fn rust_boot(x0: u64, core: u64) -> ! {
    let core = core as usize;
    exceptions::install();
    let from_hv = hypervisor_boot_info(x0);
    // RAM size is not known natively until the device tree is read (with the MMU on): start
    // with the first GiB mapped as RAM.
    let first_guess = from_hv.map_or(1 << 30, |i| i.ram_size);
    let tables = mmu::build_tables(first_guess, &image_layout());
    let l3_used = match tables {
        Ok(n) => n,
        Err(e) => {
            uart::init();
            console::early(format_args!("guest: cannot map the kernel: {e}\n"));
            super::halt_core();
        }
    };
    invalidate_image_dcache();
    mmu::enable_this_core();
    mmu::set_l3_used(l3_used);

    // SAFETY: the guest binary defines this static with `entry!`; it is plain data.
    let config = unsafe { &__SIS_GUEST_CONFIG };
    let (info, note) = match from_hv {
        Some(i) => (i, None),
        None => native_boot_info(config, if x0 == 0 { ipa::BOOT_INFO } else { x0 }, core),
    };
    let info = BOOT_INFO.call_once(|| info);
    super::hypercall::set_present(from_hv.is_some());

    uart::init();
    if let Some(n) = note {
        crate::println!("warning: {n}");
    }
    if let Err(e) = bootcheck::check(info, image_end(), core) {
        crate::println!("{}: bad boot info: {e}", info.name());
        super::halt_core();
    }
    mmu::map_ram(info.ram_size);
    heap::init(image_end(), bootcheck::heap_end(info));

    if let Err(e) = gic::init_distributor().and_then(|()| gic::init_this_core()) {
        crate::println!("{}: GIC: {e}", info.name());
        super::halt_core();
    }
    if let Err(e) = timer::init_this_core(true) {
        crate::println!("{}: timer: {e}", info.name());
        super::halt_core();
    }
    uart::enable_irq(core);
    smp::mark_online(core);
    sync::irq_enable();

    let _ = report::write_boot_line(&mut console::Console, info.name(), core, info.ram_size);
    // SAFETY: the guest binary defines this function with `entry!`.
    unsafe { __sis_guest_main(info) }
}

/// Secondary core after PSCI CPU_ON: MMU off, stack set.
extern "C" fn rust_secondary(core: u64) -> ! {
    let core = core as usize;
    exceptions::install();
    mmu::enable_this_core();
    if let Err(e) = gic::init_this_core() {
        crate::println!("core {core}: GIC: {e}");
        super::halt_core();
    }
    if let Err(e) = timer::init_this_core(false) {
        crate::println!("core {core}: timer: {e}");
        super::halt_core();
    }
    smp::mark_online(core);
    sync::irq_enable();
    smp::run_secondary_main(core)
}
