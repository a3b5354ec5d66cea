//! Console traffic on the hypervisor side: physical UART input routed to the focused console
//! (a guest's emulated PL011 or the monitor), guest output onto the multiplexed UART, and the
//! monitor's commands.

use core::sync::atomic::Ordering;

use sis_platform::layout::irq;
use sis_platform::partition::{VmId, SYSTEM};

use super::hypercall::CALLS;
use super::print::CONSOLE;
use super::uart;
use super::vcpu::Vcpu;
use super::vm::{self, CAUSES, VMS};
use crate::hvprintln;
use hypervisor::console::{Input, Target};
use hypervisor::monitor::{self, Command, Edit, LineEditor, LINE_MAX};

static MONITOR_LINE: spin::Mutex<LineEditor> = spin::Mutex::new(LineEditor::new());

/// One byte a guest wrote to its PL011 data register: sanitised and assembled into its line by
/// the multiplexer; if a partial line is left held, this core's idle timer is set for it.
pub fn guest_output(vm: VmId, b: u8) {
    let now = super::audit::now_ns();
    let deadline = {
        let mut c = CONSOLE.lock();
        c.guest_output(Target::Vm(vm), b, now, &mut uart::put);
        c.deadline()
    };
    idle_timer::arm(deadline);
}

/// The EL2 physical timer (`CNTHP`) of the core that last held a partial guest line: writes the
/// lines idle long enough, then waits for the next one (or stops).
///
/// Why this timer: partial lines must come out even when nothing else happens (a guest that
/// printed its prompt and sleeps in WFI, which is not trapped, makes no exits). The EL2
/// physical timer belongs to the hypervisor on every core, guests cannot see or program it, and
/// its interrupt reaches EL2 whether the core runs a guest or idles, so the core that took the
/// bytes is woken when they are due. Flushing on exits alone would depend on the guest's own
/// timer ticks.
pub mod idle_timer {
    use aarch64_cpu::registers::{CNTFRQ_EL0, CNTHP_CTL_EL2};
    use tock_registers::interfaces::{Readable, Writeable};

    use super::super::print::CONSOLE;
    use super::super::uart;

    /// Sets this core's timer for `deadline_ns` (since boot), or stops it.
    pub fn arm(deadline_ns: Option<u64>) {
        match deadline_ns {
            Some(ns) => {
                let freq = u128::from(CNTFRQ_EL0.get());
                let ticks = (u128::from(ns) * freq / 1_000_000_000) as u64;
                // SAFETY: CNTHP_CVAL_EL2 is the hypervisor's own timer compare value; writing it
                // only schedules an interrupt to EL2.
                unsafe {
                    core::arch::asm!("msr cnthp_cval_el2, {}", in(reg) ticks, options(nomem, nostack));
                }
                CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET + CNTHP_CTL_EL2::IMASK::CLEAR);
            }
            None => CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::CLEAR),
        }
    }

    /// The timer fired: write what is due and set it for what remains.
    pub fn fired() {
        let now = super::super::audit::now_ns();
        let deadline = {
            let mut c = CONSOLE.lock();
            c.flush_idle(now, &mut uart::put);
            c.deadline()
        };
        arm(deadline);
    }
}

/// Drains the physical UART (its interrupt is routed to the partition table's work core).
pub fn receive(v: &mut Vcpu) {
    while let Some(b) = uart::get() {
        let action = CONSOLE.lock().input(b);
        match action {
            Input::Deliver(Target::Monitor, b) => monitor_input(v, b),
            Input::Deliver(Target::Vm(id), b) => deliver(id, b),
            Input::Switched(t) => switched(t),
            Input::BadEscape(k) => hvprintln!(
                "unknown console key Ctrl-A {:?}: {}, Ctrl-A Ctrl-A sends Ctrl-A",
                k as char,
                SYSTEM.console_keys("")
            ),
            Input::Nothing => {}
        }
    }
    uart::clear_rx_timeout();
}

fn deliver(id: VmId, b: u8) {
    let vm = &VMS[id];
    if !vm.running() {
        vm.stats.input_dropped.fetch_add(1, Ordering::Relaxed);
        if !vm.stats.input_notice.swap(true, Ordering::Relaxed) {
            hvprintln!(
                "vm {} is stopped: input dropped (Ctrl-A 0, then 'start {}')",
                vm.cfg.name,
                vm.cfg.name
            );
        }
        return;
    }
    CONSOLE
        .lock()
        .delivered(Target::Vm(id), super::audit::now_ns());
    let target = {
        let mut d = vm.inner.lock();
        // A full FIFO drops the byte and counts it in the UART's own counter.
        d.vuart.receive(b);
        d.vgic.target(irq::UART)
    };
    vm.kick(target);
}

fn switched(t: Target) {
    CONSOLE.lock().switch_to(t, &mut uart::put);
    if t == Target::Monitor {
        prompt();
    }
}

fn prompt() {
    let mut c = CONSOLE.lock();
    c.end_line(&mut uart::put);
    for b in monitor::PROMPT.bytes() {
        c.output(Target::Monitor, b, &mut uart::put);
    }
}

/// Ends the echoed command line.
fn newline() {
    CONSOLE
        .lock()
        .output(Target::Monitor, b'\n', &mut uart::put);
}

/// Prints the monitor prompt (at boot).
pub fn monitor_prompt() {
    prompt();
}

fn monitor_input(v: &mut Vcpu, b: u8) {
    let edit = MONITOR_LINE.lock().feed(b);
    match edit {
        Edit::Echo(c) => CONSOLE.lock().output(Target::Monitor, c, &mut uart::put),
        Edit::Erase => {
            let mut c = CONSOLE.lock();
            for x in [0x08, b' ', 0x08] {
                c.output(Target::Monitor, x, &mut uart::put);
            }
        }
        Edit::Overflow => {
            newline();
            hvprintln!("line too long (max {LINE_MAX} characters)");
            prompt();
        }
        Edit::Submit => {
            let mut buf = [0u8; LINE_MAX];
            let n = MONITOR_LINE.lock().take(&mut buf);
            newline();
            let line = core::str::from_utf8(&buf[..n]).unwrap_or("");
            match monitor::parse(line) {
                Ok(Some(cmd)) => execute(v, cmd),
                Ok(None) => {}
                Err(e) => hvprintln!("{e}"),
            }
            prompt();
        }
        Edit::None => {}
    }
}

fn execute(v: &mut Vcpu, cmd: Command) {
    match cmd {
        Command::Help => {
            for (name, arg, what) in monitor::COMMANDS {
                hvprintln!("  {name:<8} {arg:<8} {what}");
            }
            hvprintln!(
                "  keys: {}, Ctrl-A Ctrl-A literal",
                SYSTEM.console_keys("Ctrl-A ")
            );
        }
        Command::Vms => vms(),
        Command::Stop(id) => report(id, "stopped", vm::stop(&VMS[id])),
        Command::Start(id) => report(id, "started", vm::start(&VMS[id])),
        Command::Restart(id) => report(id, "restarted", vm::restart(&VMS[id])),
        Command::Ring => ring(),
        Command::Audit => audit_tail(),
        Command::Switch(t) => {
            CONSOLE.lock().set_focus(t);
            hvprintln!("console input now goes to {}", t.name());
        }
    }
    // A stop/restart of this core's own VM takes effect at the loop's next turn.
    let _ = v;
}

fn report(id: VmId, what: &str, r: Result<(), vm::LifecycleError>) {
    let name = VMS[id].cfg.name;
    match r {
        Ok(()) => hvprintln!("vm {name} {what}"),
        Err(e) => hvprintln!("vm {name} {e}"),
    }
}

fn vms() {
    let mut line = [0u8; 96];
    let mut w = Buf {
        buf: &mut line,
        len: 0,
    };
    let _ = core::fmt::Write::write_str(&mut w, "core exits/kicks:");
    for (core, n) in super::vcpu::CORE_EXITS.iter().enumerate() {
        let kicks = super::vcpu::CORE_KICKS[core].load(Ordering::Relaxed);
        let _ = core::fmt::Write::write_fmt(
            &mut w,
            format_args!(" {core}={}/{kicks}", n.load(Ordering::Relaxed)),
        );
    }
    let len = w.len;
    hvprintln!("{}", core::str::from_utf8(&line[..len]).unwrap_or("?"));
    let irqs: [u64; sis_platform::layout::phys::NUM_CORES] =
        core::array::from_fn(|c| super::vcpu::CORE_IRQS[c].load(Ordering::Relaxed));
    hvprintln!("core irqs taken: {}", hypervisor::monitor::PerCore(&irqs));
    let (bad_escapes, out) = {
        let c = CONSOLE.lock();
        let out: [hypervisor::console::SourceStats; VMS.len()] =
            core::array::from_fn(|id| c.stats(Target::Vm(id)));
        (c.bad_escapes, out)
    };
    hvprintln!("console: unknown Ctrl-A keys dropped={bad_escapes}");
    for (vm, s) in VMS.iter().zip(out.iter()) {
        hvprintln!(
            "console {}: lines={} partial_writes={} long_splits={} escaped={} backspaces_refused={}",
            vm.cfg.name,
            s.lines,
            s.partial_writes,
            s.long_splits,
            s.escaped,
            s.backspaces_refused
        );
    }
    let smmu = &super::smmu::COUNTERS;
    hvprintln!(
        "smmu: events={} unassigned={} lost={} gerrors={}",
        smmu.events.load(Ordering::Relaxed),
        smmu.unassigned.load(Ordering::Relaxed),
        smmu.lost.load(Ordering::Relaxed),
        smmu.gerrors.load(Ordering::Relaxed)
    );
    for vm in VMS.iter() {
        let cfg = vm.cfg;
        let s = &vm.stats;
        let exits: [u64; 6] = core::array::from_fn(|i| s.exits[i].load(Ordering::Relaxed));
        let total: u64 = exits.iter().sum();
        let mut cores = [0u8; 16];
        let mut n = 0;
        for (i, c) in cfg.cores.iter().enumerate() {
            if i > 0 {
                cores[n] = b',';
                n += 1;
            }
            cores[n] = b'0' + *c as u8;
            n += 1;
        }
        let cores = core::str::from_utf8(&cores[..n]).unwrap_or("?");
        let (rx, dropped) = {
            let d = vm.inner.lock();
            (d.vuart.rx_bytes, d.vuart.rx_dropped)
        };
        hvprintln!(
            "{} {} cores={} ram={}MiB@{:#x} exits={} ({}={} {}={} {}={} {}={} {}={} {}={}) irqs={} lr_overflows={} restarts={} uart_rx={} input_dropped={} doorbells_limited={} audit_denied={} dma_faults={} cfg_refused={} undef={} start_us={} zero_us={}",
            cfg.name,
            if vm.running() { "running" } else { "stopped" },
            cores,
            cfg.ram.size >> 20,
            cfg.ram.pa,
            total,
            CAUSES[0], exits[0], CAUSES[1], exits[1], CAUSES[2], exits[2],
            CAUSES[3], exits[3], CAUSES[4], exits[4], CAUSES[5], exits[5],
            s.irqs.load(Ordering::Relaxed),
            s.lr_overflows.load(Ordering::Relaxed),
            s.restarts.load(Ordering::Relaxed),
            rx,
            dropped + s.input_dropped.load(Ordering::Relaxed),
            CALLS[vm.id].doorbells_limited.load(Ordering::Relaxed),
            CALLS[vm.id].audit_denied.load(Ordering::Relaxed),
            s.dma_faults.load(Ordering::Relaxed),
            super::pci::REFUSED[vm.id].load(Ordering::Relaxed),
            s.undefined.load(Ordering::Relaxed),
            s.load_us.load(Ordering::Relaxed),
            s.zero_us.load(Ordering::Relaxed),
        );
    }
}

fn ring() {
    for ch in SYSTEM.channels {
        channel_ring(ch);
    }
    ring_doorbells();
}

/// The state of one channel's ring, as its header and counters say.
fn channel_ring(ch: &sis_platform::partition::Channel) {
    let Some(region) = SYSTEM.shared.iter().find(|r| r.pa == ch.region) else {
        return;
    };
    // SAFETY: the channel's region is RAM the partition table reserves for the ring (validated:
    // a declared shared region), mapped by the hypervisor for its whole life; `snapshot` only
    // performs atomic loads.
    let mem = unsafe { shared_ring::RawRegion::new(region.pa as *mut u8, region.size as usize) };
    let (req, resp) = (VMS[ch.requester].cfg.name, VMS[ch.responder].cfg.name);
    match mem
        .map_err(|_| ())
        .and_then(|m| shared_ring::region::snapshot(&m).map_err(|_| ()))
    {
        Ok(s) => {
            hvprintln!("shared ring: epoch {}", s.epoch);
            for (from, to, r) in [(req, resp, &s.requests), (resp, req, &s.responses)] {
                hvprintln!(
                    "  {from}->{to}: slots={} slot_size={} head={} tail={} sent={} full={} received={} rejected={}",
                    r.capacity,
                    r.slot_size,
                    r.head,
                    r.tail,
                    r.producer.sent,
                    r.producer.full,
                    r.consumer.received,
                    r.consumer.rejected.total()
                );
            }
        }
        Err(()) => hvprintln!("shared ring: not initialised (no valid header)"),
    }
}

/// Doorbells per VM.
fn ring_doorbells() {
    for vm in VMS.iter() {
        let c = &CALLS[vm.id];
        hvprintln!(
            "  vm {}: doorbells sent={} received={} coalesced={} limited={} audit_rejected={} audit_denied={}",
            vm.cfg.name,
            vm.stats.doorbells_sent.load(Ordering::Relaxed),
            vm.stats.doorbells_received.load(Ordering::Relaxed),
            c.doorbells_coalesced.load(Ordering::Relaxed),
            c.doorbells_limited.load(Ordering::Relaxed),
            vm.stats.audit_rejected.load(Ordering::Relaxed),
            c.audit_denied.load(Ordering::Relaxed)
        );
    }
}

/// Name of a VM id in audit listings (`hv` for the hypervisor itself).
fn vm_name(id: u16) -> &'static str {
    match id {
        shared_ring::audit::VM_HYPERVISOR => "hv",
        id => VMS.get(usize::from(id)).map_or("?", |vm| vm.cfg.name),
    }
}

fn audit_tail() {
    use shared_ring::audit::AuditRecord;
    let mut recs = [AuditRecord::default(); 16];
    let Some(snap) = super::audit::latest(&mut recs) else {
        hvprintln!("audit: log header invalid");
        return;
    };
    let st = snap.stats;
    hvprintln!(
        "audit: {} records written, capacity {}, overwritten {}, invalid {}, refused {}",
        st.write_seq,
        st.capacity,
        st.overwritten,
        st.invalid,
        st.refused
    );
    for s in &snap.segments[..snap.nsegs] {
        hvprintln!(
            "  segment by={} vm={}: capacity {} written {} overwritten {} refused {} invalid {}",
            vm_name(s.writer),
            vm_name(s.subject),
            s.capacity,
            s.write_seq,
            s.overwritten,
            s.refused,
            s.invalid
        );
    }
    hvprintln!(
        "  newest {} records (merged by time), {} missing in that span",
        snap.count,
        snap.lost
    );
    for r in &recs[..snap.count] {
        hvprintln!("  {}", shared_ring::audit::Text(r, vm_name));
    }
}

/// A fixed buffer to format a line into.
struct Buf<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl core::fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(core::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
