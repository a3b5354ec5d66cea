//! The per-core loop: one vCPU pinned to each physical core. Enter the guest, handle the exit,
//! move pending virtual interrupts into list registers, repeat; idle in WFI while stopped.

use core::sync::atomic::Ordering;

use aarch64_cpu::asm::{barrier, wfi};
use aarch64_cpu::registers::*;
use sis_platform::layout::irq;
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};

use super::boot::{exit, run_guest, GuestRegs};
use super::sysreg::CPTR;
use super::vm::{Cause, Vm, MAILBOX, VMS};
use super::{console_in, gic, hypercall, lr, mmio, stage2_root};
use crate::hvprintln;
use hypervisor::vgic::NUM_IRQS;
use shared_ring::audit::{Op, STATUS_REJECT};
use sis_regs::esr::{ec, Esr};

/// Exits per physical core (the monitor's `vms` shows them; static partitioning means one
/// VM's load must not add exits on another VM's cores).
pub static CORE_EXITS: [core::sync::atomic::AtomicU64; sis_platform::layout::phys::NUM_CORES] =
    [const { core::sync::atomic::AtomicU64::new(0) }; sis_platform::layout::phys::NUM_CORES];

/// Physical interrupts the hypervisor took per core, in guest mode or idle (an interrupt
/// storm on a stopped VM's core shows here, not in the exit counters).
pub static CORE_IRQS: [core::sync::atomic::AtomicU64; sis_platform::layout::phys::NUM_CORES] =
    [const { core::sync::atomic::AtomicU64::new(0) }; sis_platform::layout::phys::NUM_CORES];

/// Kick SGIs received per physical core: the only way another core can make this one exit.
pub static CORE_KICKS: [core::sync::atomic::AtomicU64; sis_platform::layout::phys::NUM_CORES] =
    [const { core::sync::atomic::AtomicU64::new(0) }; sis_platform::layout::phys::NUM_CORES];

/// SPSR for a fresh vCPU: EL1h, all exceptions masked.
const SPSR_EL1H_MASKED: u64 = 0x3C5;

/// The vCPU on this core.
pub struct Vcpu {
    /// Physical core.
    pub core: usize,
    /// Its VM.
    pub vm: &'static Vm,
    /// Index within the VM.
    pub idx: usize,
    /// Saved general-purpose state.
    pub regs: GuestRegs,
    /// Running guest code.
    pub running: bool,
    nlr: usize,
}

impl Vcpu {
    fn new(core: usize) -> Self {
        let vm = VMS
            .iter()
            .find(|vm| vm.cfg.cores.contains(&core))
            .expect("every core belongs to a VM");
        let idx = vm.cfg.cores.iter().position(|&c| c == core).unwrap_or(0);
        Vcpu {
            core,
            vm,
            idx,
            regs: GuestRegs::default(),
            running: false,
            nlr: lr::count(),
        }
    }

    /// EL2 controls for this VM on this core (set once; they never change).
    fn configure(&self) {
        HCR_EL2.write(
            HCR_EL2::VM::Enable
                + HCR_EL2::SWIO::SET
                + HCR_EL2::FMO::EnableVirtualFIQ
                + HCR_EL2::IMO::EnableVirtualIRQ
                + HCR_EL2::AMO::SET
                + HCR_EL2::TSC::EnableTrapEl1SmcToEl2
                + HCR_EL2::RW::EL1IsAarch64
                + HCR_EL2::TSW::SET
                + HCR_EL2::TIDCP::SET
                + HCR_EL2::TACR::SET,
        );
        configure_traps();
        VTCR_EL2.write(
            VTCR_EL2::RES1::SET
                + VTCR_EL2::T0SZ.val(64 - hypervisor::stage2::IPA_BITS)
                + VTCR_EL2::SL0.val(1)
                + VTCR_EL2::IRGN0.val(1)
                + VTCR_EL2::ORGN0.val(1)
                + VTCR_EL2::SH0.val(3)
                + VTCR_EL2::TG0.val(0)
                + VTCR_EL2::PS.val(1),
        );
        VTTBR_EL2.set(stage2_root(self.vm.id) | ((self.vm.id as u64 + 1) << 48));
        VMPIDR_EL2.set(MPIDR_EL1.get());
        VPIDR_EL2_set(MIDR_EL1.get());
        CNTHCTL_EL2.write(CNTHCTL_EL2::EL1PCTEN::SET + CNTHCTL_EL2::EL1PCEN::CLEAR);
        CNTVOFF_EL2.set(0);
        barrier::isb(barrier::SY);
    }

    fn process_mailbox(&mut self) {
        let m = &MAILBOX[self.core];
        if m.stop.load(Ordering::Acquire) {
            self.go_offline();
            m.stop.store(false, Ordering::Release);
        }
        if m.start.swap(false, Ordering::AcqRel) && self.vm.running() {
            self.regs = GuestRegs::default();
            self.regs.x[0] = m.arg.load(Ordering::Relaxed);
            self.regs.elr = m.entry.load(Ordering::Relaxed);
            self.regs.spsr = SPSR_EL1H_MASKED;
            super::el1::reset();
            for n in 0..self.nlr {
                lr::write(n, lr::Lr::new(0));
            }
            // Forget the previous instance's stage-1 TLB entries for this VMID.
            // SAFETY: TLB maintenance has no effect on memory contents.
            unsafe { core::arch::asm!("tlbi vmalls12e1", "dsb nsh", "isb", options(nostack)) };
            self.running = true;
            m.online.store(true, Ordering::Release);
        }
    }

    /// Leaves guest mode: the guest's timer and interrupts are quiesced so nothing fires for a
    /// stopped VM, and forwarded hardware interrupts are deactivated.
    pub fn go_offline(&mut self) {
        if self.running {
            CNTV_CTL_EL0.set(0);
            for n in 0..self.nlr {
                let l = lr::read(n);
                if l.read(ICH_LR0_EL2::HW) == 1 && l.read(ICH_LR0_EL2::State) != 0 {
                    gic::deactivate(l.read(ICH_LR0_EL2::pINTID) as u32);
                }
                lr::write(n, lr::Lr::new(0));
            }
            lr::clear_active_priorities();
            // Hardware interrupts acknowledged but never delivered are still active.
            let pending = &self.vm.pending[self.idx];
            for intid in core::iter::once(irq::VTIMER).chain(self.vm.cfg.irqs.iter().copied()) {
                if pending.word(intid as usize / 32) & (1 << (intid % 32)) != 0 {
                    gic::deactivate(intid);
                }
            }
            self.vm.pending[self.idx].clear_all();
            ICH_HCR_EL2.modify(ICH_HCR_EL2::UIE::CLEAR);
        }
        self.running = false;
        MAILBOX[self.core].online.store(false, Ordering::Release);
    }

    /// Whether a list register holds `intid` (in any state); returns its index.
    fn find_lr(&self, intid: u32) -> Option<usize> {
        let free = lr::free_mask();
        (0..self.nlr).find(|&n| {
            free & (1 << n) == 0 && lr::read(n).read(ICH_LR0_EL2::vINTID) == u64::from(intid)
        })
    }

    /// Moves deliverable pending interrupts into free list registers; on overflow, asks for a
    /// maintenance interrupt when the list registers drain.
    fn flush(&mut self) {
        let vm = self.vm;
        let pending = &vm.pending[self.idx];
        let d = vm.inner.lock();
        // The emulated UART's line is level-sensitive: re-raise it while it stays asserted.
        if d.vgic.target(irq::UART) == self.idx
            && d.vuart.irq_level()
            && self.find_lr(irq::UART).is_none()
        {
            pending.raise(irq::UART);
        }
        let mut free = lr::free_mask() & ((1 << self.nlr) - 1);
        let mut overflow = false;
        'words: for w in 0..NUM_IRQS / 32 {
            let mut bits = pending.word(w) & d.vgic.deliverable_mask(self.idx, w);
            while bits != 0 {
                let intid = (w * 32) as u32 + bits.trailing_zeros();
                bits &= bits - 1;
                let hw = intid == irq::VTIMER || vm.cfg.irqs.contains(&intid);
                if let Some(n) = self.find_lr(intid) {
                    let mut l = lr::read(n);
                    if !hw && l.read(ICH_LR0_EL2::State) == 0b10 {
                        l.modify(ICH_LR0_EL2::State::PendingAndActive);
                        lr::write(n, l);
                    }
                    pending.clear(intid);
                    continue;
                }
                if free == 0 {
                    overflow = true;
                    break 'words;
                }
                let n = free.trailing_zeros() as usize;
                free &= !(1 << n);
                let mut l = lr::Lr::new(0);
                l.modify(
                    ICH_LR0_EL2::vINTID.val(u64::from(intid))
                        + ICH_LR0_EL2::Group::SET
                        + ICH_LR0_EL2::Priority.val(u64::from(d.vgic.priority(self.idx, intid)))
                        + ICH_LR0_EL2::State::Pending,
                );
                if hw {
                    l.modify(ICH_LR0_EL2::HW::SET + ICH_LR0_EL2::pINTID.val(u64::from(intid)));
                }
                lr::write(n, l);
                pending.clear(intid);
                vm.stats.irqs.fetch_add(1, Ordering::Relaxed);
            }
        }
        if overflow {
            vm.stats.lr_overflows.fetch_add(1, Ordering::Relaxed);
            ICH_HCR_EL2.modify(ICH_HCR_EL2::UIE::SET);
        } else {
            ICH_HCR_EL2.modify(ICH_HCR_EL2::UIE::CLEAR);
        }
    }

    /// Acknowledges and handles every pending physical interrupt.
    pub fn handle_irqs(&mut self) {
        loop {
            let intid = gic::ack();
            if intid >= gic::SPURIOUS {
                break;
            }
            CORE_IRQS[self.core].fetch_add(1, Ordering::Relaxed);
            gic::eoi(intid);
            match intid {
                irq::VTIMER if self.running => {
                    // Forwarded with the HW bit: the guest's EOI deactivates it.
                    self.vm.pending[self.idx].raise(irq::VTIMER);
                }
                irq::UART => {
                    console_in::receive(self);
                    gic::deactivate(intid);
                }
                spi if self.running && self.vm.cfg.irqs.contains(&spi) => {
                    let v = self.vm.inner.lock().vgic.target(spi);
                    self.vm.raise(v, spi);
                }
                irq::HYP_TIMER => {
                    // Partial console lines are due (level-sensitive: re-armed or stopped first).
                    console_in::idle_timer::fired();
                    gic::deactivate(intid);
                }
                irq::MAINTENANCE => {
                    // The list registers drained (underflow). The line stays asserted while
                    // UIE is set, so clear it now; `flush` refills and sets it again if needed.
                    ICH_HCR_EL2.modify(ICH_HCR_EL2::UIE::CLEAR);
                    gic::deactivate(intid);
                }
                irq::SGI_KICK => {
                    // Kicks only wake the loop to read the mailbox and pending interrupts.
                    CORE_KICKS[self.core].fetch_add(1, Ordering::Relaxed);
                    gic::deactivate(intid);
                }
                irq::SMMU_EVENTQ | irq::SMMU_GERROR => {
                    super::devices::smmu_irq(intid);
                    gic::deactivate(intid);
                }
                _ => gic::deactivate(intid),
            }
        }
    }

    /// Stops this VM after a fault and reports it on the monitor.
    pub fn fault(&mut self, what: impl core::fmt::Display, addr: Option<u64>, esr: Esr) {
        self.vm.count(Cause::Other);
        super::audit::event(
            self.vm.id,
            Op::VmFault,
            STATUS_REJECT,
            addr.unwrap_or(esr.0),
        );
        let _ = super::vm::stop(self.vm);
        match addr {
            Some(a) => hvprintln!(
                "vm {} stopped: {what} at IPA {a:#x}, {esr}, pc {:#x} (core {})",
                self.vm.cfg.name,
                self.regs.elr,
                self.core
            ),
            None => hvprintln!(
                "vm {} stopped: {what}, {esr}, pc {:#x} (core {})",
                self.vm.cfg.name,
                self.regs.elr,
                self.core
            ),
        }
        self.go_offline();
    }

    fn handle_sync(&mut self) {
        let esr = Esr(ESR_EL2.get());
        match esr.ec() {
            ec::HVC64 => {
                self.vm.count(Cause::Hvc);
                hypercall::handle(self);
            }
            ec::SMC64 => {
                self.vm.count(Cause::Smc);
                self.regs.elr += 4;
                hypercall::handle(self);
            }
            ec::DABT_LOW => {
                self.vm.count(Cause::Mmio);
                mmio::handle(self, esr);
            }
            ec::SYSREG => {
                self.vm.count(Cause::Sysreg);
                mmio::sysreg(self, esr);
            }
            ec::IABT_LOW => {
                let ipa = ((HPFAR_EL2.get() >> 4) << 12) | (FAR_EL2.get() & 0xFFF);
                self.fault("stage-2 instruction fault", Some(ipa), esr);
            }
            _ => self.fault("unhandled trap", None, esr),
        }
    }

    fn idle(&mut self) {
        wfi();
        self.handle_irqs();
    }
}

/// The traps that keep a guest off what a VM does not have (see `systrap` for what a trapped
/// access gets): MDCR_EL2 traps every PMU register (TPM, TPMCR; HPMN = 0 reserves every event
/// counter for EL2, whose enable HPME stays clear) and every debug register (TDA, TDOSA, TDRA;
/// debug exceptions stay routed to the guest's EL1, TDE clear). CPTR_EL2 traps the trace unit
/// (TTA) but not FP/SIMD: the guest owns the FP state; the hypervisor is built without FP.
/// ACTLR_EL2 = 0 denies EL1 access to the Cortex-A72's CPUACTLR, CPUECTLR, L2CTLR, L2ECTLR and
/// L2ACTLR.
fn configure_traps() {
    MDCR_EL2.write(
        MDCR_EL2::TPM::SET
            + MDCR_EL2::TPMCR::SET
            + MDCR_EL2::HPMN.val(0)
            + MDCR_EL2::TDA::SET
            + MDCR_EL2::TDOSA::SET
            + MDCR_EL2::TDRA::SET,
    );
    super::sysreg::CPTR_EL2.write(CPTR::RES1.val(0x33FF) + CPTR::TTA::SET);
    ACTLR_EL2.set(0);
}

#[allow(non_snake_case)]
fn VPIDR_EL2_set(v: u64) {
    // SAFETY: VPIDR_EL2 only changes what the guest reads as MIDR_EL1.
    unsafe { core::arch::asm!("msr vpidr_el2, {}", in(reg) v, options(nomem, nostack)) };
}

/// This core's loop; never returns.
pub fn run(core: usize) -> ! {
    let mut v = Vcpu::new(core);
    v.configure();
    loop {
        v.process_mailbox();
        if !v.running {
            v.idle();
            continue;
        }
        v.flush();
        // SAFETY: `regs` is this core's vCPU state; stage-2, HCR_EL2 and the vGIC are set up
        // for the VM, so the guest runs confined to its partition and every exit returns here.
        let kind = unsafe { run_guest(&mut v.regs) };
        CORE_EXITS[core].fetch_add(1, Ordering::Relaxed);
        match kind {
            exit::SYNC => v.handle_sync(),
            exit::IRQ => {
                v.vm.count(Cause::Irq);
                v.handle_irqs();
            }
            _ => {
                let esr = Esr(ESR_EL2.get());
                v.fault("unexpected exception (SError/FIQ/AArch32)", None, esr);
            }
        }
    }
}
