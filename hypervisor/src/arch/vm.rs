//! VMs: their shared state, counters, and lifecycle (start from the pristine image, stop,
//! restart). Cross-core requests go through per-core mailboxes plus a kick SGI.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

use aarch64_cpu::registers::{CNTFRQ_EL0, CNTPCT_EL0};
use sis_platform::bootinfo::BootInfo;
use sis_platform::layout::{ipa, irq, phys};
use sis_platform::partition::{VmConfig, VmId, PARTITIONS, SYSTEM};
use tock_registers::interfaces::Readable;

use super::{gic, this_core};
use hypervisor::elf::Image;
use hypervisor::vgic::{Pending, Vgic, MAX_VCPUS};
use hypervisor::vuart::VUart;
use shared_ring::audit::{Op, STATUS_OK};

// `IMAGES`: every image the partition table names, embedded by build.rs.
include!(concat!(env!("OUT_DIR"), "/images.rs"));

/// The embedded, never-modified image named `name` (a VM's `image` in the partition table).
pub fn image_bytes(name: &str) -> Option<&'static [u8]> {
    IMAGES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// Exit causes counted per VM.
#[derive(Clone, Copy)]
pub enum Cause {
    /// Emulated MMIO (UART, GIC).
    Mmio = 0,
    /// HVC (PSCI, hypercalls).
    Hvc,
    /// SMC.
    Smc,
    /// Trapped system register.
    Sysreg,
    /// Physical interrupt.
    Irq,
    /// Anything else (faults).
    Other,
}

/// Names of the causes, in order.
pub const CAUSES: [&str; 6] = ["mmio", "hvc", "smc", "sysreg", "irq", "other"];

/// VM state values.
pub const STOPPED: u8 = 0;
/// Running.
pub const RUNNING: u8 = 1;

/// Counters of one VM.
pub struct Stats {
    /// Exits by cause.
    pub exits: [AtomicU64; 6],
    /// Virtual interrupts put in list registers.
    pub irqs: AtomicU64,
    /// Starts after the first.
    pub restarts: AtomicU64,
    /// Console input bytes dropped (VM stopped or FIFO full).
    pub input_dropped: AtomicU64,
    /// The user was told (once per stop) that input to this stopped VM is dropped.
    pub input_notice: AtomicBool,
    /// Doorbells this VM rang.
    pub doorbells_sent: AtomicU64,
    /// Doorbells rung at this VM.
    pub doorbells_received: AtomicU64,
    /// Audit appends refused as invalid.
    pub audit_rejected: AtomicU64,
    /// Times pending interrupts did not fit the list registers (refilled on maintenance IRQ).
    pub lr_overflows: AtomicU64,
    /// DMA of its devices the SMMU refused (each stops the VM).
    pub dma_faults: AtomicU64,
    /// Trapped register accesses answered with an Undefined Instruction exception (PMU, debug,
    /// trace, IMPDEF, set/way).
    pub undefined: AtomicU64,
    /// Microseconds the last start spent preparing RAM (zeroing, image copy, cache clean).
    pub load_us: AtomicU64,
    /// Of which zeroing the whole partition.
    pub zero_us: AtomicU64,
}

/// What every core may know about a VM.
pub struct Vm {
    /// Partition-table index.
    pub id: VmId,
    /// Its configuration.
    pub cfg: &'static VmConfig,
    state: AtomicU8,
    starts: AtomicU64,
    /// Emulated devices.
    pub inner: spin::Mutex<Devices>,
    /// Pending virtual interrupts per vCPU.
    pub pending: [Pending; MAX_VCPUS],
    /// Counters.
    pub stats: Stats,
    lifecycle: spin::Mutex<()>,
}

/// The emulated devices of a VM.
pub struct Devices {
    /// Its GIC distributor and redistributors.
    pub vgic: Vgic,
    /// Its PL011.
    pub vuart: VUart,
}

impl Vm {
    const fn new(id: VmId) -> Self {
        Vm {
            id,
            cfg: &PARTITIONS[id],
            state: AtomicU8::new(STOPPED),
            starts: AtomicU64::new(0),
            inner: spin::Mutex::new(Devices {
                vgic: Vgic::new(PARTITIONS[id].cores),
                vuart: VUart::new(),
            }),
            pending: [const { Pending::new() }; MAX_VCPUS],
            stats: Stats {
                exits: [const { AtomicU64::new(0) }; 6],
                irqs: AtomicU64::new(0),
                restarts: AtomicU64::new(0),
                input_dropped: AtomicU64::new(0),
                input_notice: AtomicBool::new(false),
                doorbells_sent: AtomicU64::new(0),
                doorbells_received: AtomicU64::new(0),
                audit_rejected: AtomicU64::new(0),
                lr_overflows: AtomicU64::new(0),
                dma_faults: AtomicU64::new(0),
                undefined: AtomicU64::new(0),
                load_us: AtomicU64::new(0),
                zero_us: AtomicU64::new(0),
            },
            lifecycle: spin::Mutex::new(()),
        }
    }

    /// How many times the VM was started (its generation).
    pub fn starts(&self) -> u64 {
        self.starts.load(Ordering::Acquire)
    }

    /// Whether the VM is running.
    pub fn running(&self) -> bool {
        self.state.load(Ordering::Acquire) == RUNNING
    }

    /// Counts one exit.
    pub fn count(&self, c: Cause) {
        self.stats.exits[c as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Makes vCPU `v` notice new pending interrupts.
    pub fn kick(&self, v: usize) {
        match self.cfg.cores.get(v) {
            Some(&core) if core != this_core() => gic::send_sgi(core, irq::SGI_KICK),
            _ => {}
        }
    }

    /// Marks `intid` pending on vCPU `v` and kicks it; nothing for a vCPU the VM does not have.
    pub fn raise(&self, v: usize, intid: u32) {
        if let Some(p) = self.pending.get(v) {
            p.raise(intid);
            self.kick(v);
        }
    }

    /// Kicks every vCPU but the current core's.
    pub fn kick_all(&self) {
        for v in 0..self.cfg.cores.len() {
            self.kick(v);
        }
    }
}

/// All VMs, indexed like the partition table.
pub static VMS: [Vm; PARTITIONS.len()] = {
    let mut i = 0;
    let mut vms = [const { Vm::new(0) }; PARTITIONS.len()];
    while i < PARTITIONS.len() {
        vms[i] = Vm::new(i);
        i += 1;
    }
    vms
};

/// A request to one core.
pub struct Mailbox {
    /// Stop the vCPU.
    pub stop: AtomicBool,
    /// Start the vCPU at `entry` with x0 = `arg`.
    pub start: AtomicBool,
    /// Entry point for `start`.
    pub entry: AtomicU64,
    /// x0 for `start`.
    pub arg: AtomicU64,
    /// The vCPU on this core is running guest code.
    pub online: AtomicBool,
}

/// One mailbox per physical core.
pub static MAILBOX: [Mailbox; phys::NUM_CORES] = [const {
    Mailbox {
        stop: AtomicBool::new(false),
        start: AtomicBool::new(false),
        entry: AtomicU64::new(0),
        arg: AtomicU64::new(0),
        online: AtomicBool::new(false),
    }
}; phys::NUM_CORES];

/// Asks `core` to start its vCPU.
pub fn request_start(core: usize, entry: u64, arg: u64) {
    let m = &MAILBOX[core];
    m.entry.store(entry, Ordering::Relaxed);
    m.arg.store(arg, Ordering::Relaxed);
    m.start.store(true, Ordering::Release);
    if core != this_core() {
        gic::send_sgi(core, irq::SGI_KICK);
    }
}

/// Why a lifecycle operation failed.
#[derive(Clone, Copy, Debug)]
pub enum LifecycleError {
    /// Already running.
    Running,
    /// Already stopped.
    Stopped,
    /// Another start/stop of this VM is in progress.
    Busy,
    /// A core did not stop in time.
    CoreStuck(usize),
    /// The embedded image is not loadable.
    BadImage(hypervisor::elf::ElfError),
    /// No image of that name is embedded (build.rs embeds every one the table names).
    NoImage(&'static str),
}

impl core::fmt::Display for LifecycleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LifecycleError::Running => f.write_str("is running (stop it first)"),
            LifecycleError::Stopped => f.write_str("is already stopped"),
            LifecycleError::Busy => f.write_str("is being started or stopped"),
            LifecycleError::CoreStuck(c) => write!(f, "core {c} did not stop"),
            LifecycleError::BadImage(e) => write!(f, "image not loadable: {e:?}"),
            LifecycleError::NoImage(name) => write!(f, "no image {name} embedded"),
        }
    }
}

/// Stops every vCPU of `vm` (the current core's at its next loop turn).
pub fn stop(vm: &Vm) -> Result<(), LifecycleError> {
    let _guard = vm.lifecycle.try_lock().ok_or(LifecycleError::Busy)?;
    if !vm.running() {
        return Err(LifecycleError::Stopped);
    }
    stop_locked(vm);
    Ok(())
}

fn stop_locked(vm: &Vm) {
    vm.state.store(STOPPED, Ordering::Release);
    for &core in vm.cfg.cores {
        MAILBOX[core].start.store(false, Ordering::Release);
        MAILBOX[core].stop.store(true, Ordering::Release);
    }
    vm.kick_all();
    super::devices::stop(vm);
}

/// Loads the pristine image and starts the VM's boot vCPU.
pub fn start(vm: &Vm) -> Result<(), LifecycleError> {
    let _guard = vm.lifecycle.try_lock().ok_or(LifecycleError::Busy)?;
    if vm.running() {
        return Err(LifecycleError::Running);
    }
    start_locked(vm)
}

/// Stops then starts the VM (monitor `restart`, guest `SYSTEM_RESET`).
pub fn restart(vm: &Vm) -> Result<(), LifecycleError> {
    let _guard = vm.lifecycle.try_lock().ok_or(LifecycleError::Busy)?;
    stop_locked(vm);
    start_locked(vm)
}

fn start_locked(vm: &Vm) -> Result<(), LifecycleError> {
    wait_offline(vm)?;
    let entry = load(vm)?;
    {
        let mut d = vm.inner.lock();
        d.vgic = Vgic::new(vm.cfg.cores);
        d.vuart.reset();
    }
    for p in &vm.pending {
        p.clear_all();
    }
    super::devices::start(vm);
    if vm.starts.fetch_add(1, Ordering::Relaxed) > 0 {
        vm.stats.restarts.fetch_add(1, Ordering::Relaxed);
    }
    vm.stats.input_notice.store(false, Ordering::Relaxed);
    vm.state.store(RUNNING, Ordering::Release);
    super::audit::event(vm.id, Op::VmStart, STATUS_OK, entry);
    request_start(vm.cfg.cores[0], entry, ipa::BOOT_INFO);
    Ok(())
}

/// Seconds-to-ticks of the system counter.
fn ticks(ms: u64) -> u64 {
    CNTFRQ_EL0.get() * ms / 1000
}

/// Waits (bounded) until every other core of the VM has left guest mode.
fn wait_offline(vm: &Vm) -> Result<(), LifecycleError> {
    let me = this_core();
    let deadline = CNTPCT_EL0.get() + ticks(2000);
    for &core in vm.cfg.cores {
        if core == me {
            continue;
        }
        while MAILBOX[core].online.load(Ordering::Acquire)
            || MAILBOX[core].stop.load(Ordering::Acquire)
        {
            if CNTPCT_EL0.get() > deadline {
                return Err(LifecycleError::CoreStuck(core));
            }
            core::hint::spin_loop();
        }
    }
    Ok(())
}

/// Guest-physical to host-physical for the VM's RAM.
fn ram_pa(cfg: &VmConfig, addr: u64) -> u64 {
    cfg.ram.pa + (addr - ipa::RAM_BASE)
}

/// Copies the pristine ELF image into the VM's RAM and writes its boot info; returns the
/// entry point.
fn load(vm: &Vm) -> Result<u64, LifecycleError> {
    let cfg = vm.cfg;
    let bytes = image_bytes(cfg.image).ok_or(LifecycleError::NoImage(cfg.image))?;
    let img = Image::parse(bytes, ipa::KERNEL_BASE, ipa::RAM_BASE + cfg.ram.size)
        .map_err(LifecycleError::BadImage)?;
    let t0 = CNTPCT_EL0.get();
    // SAFETY: the VM's own physical RAM (mapped writable for the hypervisor); the VM is stopped,
    // so nothing else uses it. Every byte is zeroed: nothing of a previous run survives.
    unsafe { super::ram::zero(cfg.ram.pa, cfg.ram.size) };
    let t1 = CNTPCT_EL0.get();
    for seg in img.segments() {
        let dst = ram_pa(cfg, seg.addr) as *mut u8;
        // SAFETY: `Image::parse` checked that [addr, addr + memsz) lies inside the VM's RAM
        // window, which maps to the VM's own physical RAM (identity-mapped for the hypervisor);
        // the VM is stopped, so nothing else uses that memory. The source range was checked
        // against the image length. The rest of the segment (BSS) is already zero.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr().add(seg.offset), dst, seg.filesz) };
    }
    let info = BootInfo::for_vm(&SYSTEM, vm.id, CNTFRQ_EL0.get());
    let at = ram_pa(cfg, ipa::BOOT_INFO) as *mut BootInfo;
    // SAFETY: the boot-info page is the first page of the VM's RAM (below KERNEL_BASE, so no
    // segment overlaps it), suitably aligned, and the VM is stopped.
    unsafe { at.write_volatile(info) };
    super::ram::clean(cfg.ram.pa, cfg.ram.size);
    let t2 = CNTPCT_EL0.get();
    let us = |ticks: u64| ticks * 1_000_000 / CNTFRQ_EL0.get().max(1);
    vm.stats.zero_us.store(us(t1 - t0), Ordering::Relaxed);
    vm.stats.load_us.store(us(t2 - t0), Ordering::Relaxed);
    Ok(img.entry)
}
