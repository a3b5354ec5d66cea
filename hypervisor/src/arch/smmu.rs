//! The SMMUv3 (hardware edge): its register block, the memory it reads (stream table, context
//! descriptors, stage-1 tables, command and event queues, all in the hypervisor's own RAM and
//! mapped into no guest), the programming sequence, stream enable/disable as VMs start and
//! stop, and the event and global-error interrupts. The structures themselves are built by
//! `hypervisor::smmu`.

use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{CNTFRQ_EL0, CNTPCT_EL0};
use sis_platform::layout::{irq, phys};
use sis_platform::partition::{VmId, PARTITIONS};
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite};
use tock_registers::{register_bitfields, register_structs};

use super::gic;
use crate::hvprintln;
use hypervisor::smmu::cmd::{self, Command};
use hypervisor::smmu::event::{Event, Record};
use hypervisor::smmu::iopt;
use hypervisor::smmu::queue::{Ring, OVERFLOW};
use hypervisor::smmu::ste::{ContextDescriptor, Ste};
use hypervisor::stage2::{Stage2, Table};

register_bitfields! {u32,
    IDR0 [
        S1P OFFSET(1) NUMBITS(1) [],
        TTF OFFSET(2) NUMBITS(2) [],
        COHACC OFFSET(4) NUMBITS(1) [],
        TTENDIAN OFFSET(21) NUMBITS(2) [],
        STLEVEL OFFSET(27) NUMBITS(2) []
    ],
    IDR1 [
        SIDSIZE OFFSET(0) NUMBITS(6) [],
        EVENTQS OFFSET(16) NUMBITS(5) [],
        CMDQS OFFSET(21) NUMBITS(5) []
    ],
    IDR5 [
        OAS OFFSET(0) NUMBITS(3) [],
        GRAN4K OFFSET(4) NUMBITS(1) []
    ],
    CR0 [
        SMMUEN OFFSET(0) NUMBITS(1) [],
        EVENTQEN OFFSET(2) NUMBITS(1) [],
        CMDQEN OFFSET(3) NUMBITS(1) []
    ],
    CR1 [
        QUEUE_IC OFFSET(0) NUMBITS(2) [],
        QUEUE_OC OFFSET(2) NUMBITS(2) [],
        QUEUE_SH OFFSET(4) NUMBITS(2) [],
        TABLE_IC OFFSET(6) NUMBITS(2) [],
        TABLE_OC OFFSET(8) NUMBITS(2) [],
        TABLE_SH OFFSET(10) NUMBITS(2) []
    ],
    CR2 [
        E2H OFFSET(0) NUMBITS(1) [],
        RECINVSID OFFSET(1) NUMBITS(1) [],
        PTM OFFSET(2) NUMBITS(1) []
    ],
    IRQ_CTRL [
        GERROR_IRQEN OFFSET(0) NUMBITS(1) [],
        PRIQ_IRQEN OFFSET(1) NUMBITS(1) [],
        EVENTQ_IRQEN OFFSET(2) NUMBITS(1) []
    ],
    GERROR [
        CMDQ_ERR OFFSET(0) NUMBITS(1) [],
        EVENTQ_ABT_ERR OFFSET(2) NUMBITS(1) [],
        PRIQ_ABT_ERR OFFSET(3) NUMBITS(1) [],
        MSI_ABT_ERR OFFSET(4) NUMBITS(4) [],
        SFM_ERR OFFSET(8) NUMBITS(1) []
    ],
    STRTAB_BASE_CFG [
        LOG2SIZE OFFSET(0) NUMBITS(6) [],
        SPLIT OFFSET(6) NUMBITS(5) [],
        FMT OFFSET(16) NUMBITS(2) [Linear = 0]
    ]
}

register_bitfields! {u64,
    STRTAB_BASE [
        ADDR OFFSET(6) NUMBITS(46) [],
        RA OFFSET(62) NUMBITS(1) []
    ],
    Q_BASE [
        LOG2SIZE OFFSET(0) NUMBITS(5) [],
        ADDR OFFSET(5) NUMBITS(47) [],
        /// Read-allocate (command queue) or write-allocate (event queue).
        ALLOC OFFSET(62) NUMBITS(1) []
    ]
}

register_structs! {
    Regs {
        (0x0000 => idr0: ReadOnly<u32, IDR0::Register>),
        (0x0004 => idr1: ReadOnly<u32, IDR1::Register>),
        (0x0008 => _r0),
        (0x0014 => idr5: ReadOnly<u32, IDR5::Register>),
        (0x0018 => _r1),
        (0x0020 => cr0: ReadWrite<u32, CR0::Register>),
        (0x0024 => cr0ack: ReadOnly<u32, CR0::Register>),
        (0x0028 => cr1: ReadWrite<u32, CR1::Register>),
        (0x002C => cr2: ReadWrite<u32, CR2::Register>),
        (0x0030 => _r2),
        (0x0050 => irq_ctrl: ReadWrite<u32, IRQ_CTRL::Register>),
        (0x0054 => irq_ctrlack: ReadOnly<u32, IRQ_CTRL::Register>),
        (0x0058 => _r3),
        (0x0060 => gerror: ReadOnly<u32, GERROR::Register>),
        (0x0064 => gerrorn: ReadWrite<u32, GERROR::Register>),
        (0x0068 => _r4),
        (0x0080 => strtab_base: ReadWrite<u64, STRTAB_BASE::Register>),
        (0x0088 => strtab_base_cfg: ReadWrite<u32, STRTAB_BASE_CFG::Register>),
        (0x008C => _r5),
        (0x0090 => cmdq_base: ReadWrite<u64, Q_BASE::Register>),
        (0x0098 => cmdq_prod: ReadWrite<u32>),
        (0x009C => cmdq_cons: ReadOnly<u32>),
        (0x00A0 => eventq_base: ReadWrite<u64, Q_BASE::Register>),
        (0x00A8 => _r6),
        (0x100A8 => eventq_prod: ReadOnly<u32>),
        (0x100AC => eventq_cons: ReadWrite<u32>),
        (0x100B0 => @END),
    }
}

fn regs() -> &'static Regs {
    // SAFETY: SMMU_BASE is the SMMU's two register pages (the DTB is checked at boot),
    // identity-mapped as device memory for the hypervisor's whole life and mapped into no
    // guest; the struct matches the register layout (IHI 0070, page 1 at +64 KiB).
    unsafe { &*(phys::SMMU_BASE as *const Regs) }
}

/// Stream IDs in the linear stream table: every requester ID on bus 0.
const STREAMS_LOG2: u32 = 8;
const STREAMS: usize = 1 << STREAMS_LOG2;
/// Command queue: 64 entries.
const CMDQ: Ring = Ring::new(6);
/// Event queue: 64 entries.
const EVENTQ: Ring = Ring::new(6);
/// Stage-1 tables per VM (root, one level-2 table per GiB of RAM, spare for 4 KiB pages).
const IOPT_TABLES: usize = 4;
/// How long the SMMU may take to acknowledge a control write or finish commands.
const TIMEOUT_MS: u64 = 100;

#[repr(C, align(16384))]
struct StreamTable([Ste; STREAMS]);
#[repr(C, align(1024))]
struct CmdQueue([Command; 64]);
#[repr(C, align(2048))]
struct EventQueue([Record; 64]);

/// Everything the SMMU reads, and the driver's state. One lock: command submission, stream
/// changes and event draining never interleave.
struct Smmu {
    streams: StreamTable,
    cds: [ContextDescriptor; PARTITIONS.len()],
    tables: [[Table; IOPT_TABLES]; PARTITIONS.len()],
    cmdq: CmdQueue,
    eventq: EventQueue,
    cmd_prod: u32,
    /// The SMMU is programmed and enabled: DMA of assigned devices is confined.
    ready: bool,
}

static SMMU: spin::Mutex<Smmu> = spin::Mutex::new(Smmu {
    streams: StreamTable([Ste::INVALID; STREAMS]),
    cds: [ContextDescriptor::INVALID; PARTITIONS.len()],
    tables: [[Table::EMPTY; IOPT_TABLES]; PARTITIONS.len()],
    cmdq: CmdQueue([[0; 2]; 64]),
    eventq: EventQueue([[0; 4]; 64]),
    cmd_prod: 0,
    ready: false,
});

/// Counters the monitor shows.
pub struct Counters {
    /// Event records read.
    pub events: AtomicU64,
    /// Events of streams no VM owns.
    pub unassigned: AtomicU64,
    /// Events lost to a full event queue.
    pub lost: AtomicU64,
    /// Global errors reported.
    pub gerrors: AtomicU64,
}

/// The SMMU's counters.
pub static COUNTERS: Counters = Counters {
    events: AtomicU64::new(0),
    unassigned: AtomicU64::new(0),
    lost: AtomicU64::new(0),
    gerrors: AtomicU64::new(0),
};

fn deadline() -> u64 {
    CNTPCT_EL0.get() + CNTFRQ_EL0.get() * TIMEOUT_MS / 1000
}

/// Spins until `done` or the timeout; false on timeout.
fn wait(mut done: impl FnMut() -> bool) -> bool {
    let end = deadline();
    while !done() {
        if CNTPCT_EL0.get() > end {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

/// Why the SMMU could not be used.
#[derive(Clone, Copy, Debug)]
pub enum SmmuError {
    /// The registers do not describe a usable SMMUv3 (no stage 1, no AArch64 tables...).
    Unsupported(&'static str),
    /// A control write was not acknowledged in time.
    NoAck(&'static str),
    /// The command queue did not drain (or reported an error).
    Commands(&'static str),
    /// A VM's stage-1 tables could not be built.
    Tables(VmId),
}

impl core::fmt::Display for SmmuError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SmmuError::Unsupported(w) => write!(f, "unsupported: {w}"),
            SmmuError::NoAck(w) => write!(f, "{w} not acknowledged"),
            SmmuError::Commands(w) => write!(f, "command queue: {w}"),
            SmmuError::Tables(vm) => write!(f, "stage-1 tables of vm {vm} do not fit"),
        }
    }
}

impl Smmu {
    /// Queues `cmds`, then a `CMD_SYNC`, and waits until the SMMU has consumed them all.
    fn submit(&mut self, cmds: &[Command]) -> Result<(), SmmuError> {
        let r = regs();
        for c in cmds.iter().chain(core::iter::once(&cmd::sync())) {
            if !wait(|| !CMDQ.is_full(self.cmd_prod, r.cmdq_cons.get())) {
                return Err(SmmuError::Commands("full"));
            }
            self.cmdq.0[CMDQ.slot(self.cmd_prod)] = *c;
            self.cmd_prod = CMDQ.next(self.cmd_prod);
        }
        // The entries must be visible to the SMMU before it sees the new producer index.
        barrier::dsb(barrier::ISHST);
        r.cmdq_prod.set(self.cmd_prod);
        let prod = self.cmd_prod;
        let drained = wait(|| {
            let cons = r.cmdq_cons.get();
            CMDQ.is_empty(prod, cons) || cmd::error_name(cons).is_some()
        });
        if let Some(e) = cmd::error_name(r.cmdq_cons.get()) {
            return Err(SmmuError::Commands(e));
        }
        if !drained {
            return Err(SmmuError::Commands("timed out"));
        }
        Ok(())
    }

    fn set_stream(&mut self, sid: u32, ste: Ste) {
        let e = &mut self.streams.0[sid as usize];
        // Doubleword 0 (valid, config) last: the SMMU never sees a half-written entry that
        // translates.
        for i in (1..8).rev() {
            // SAFETY: a plain volatile store into the stream table this lock owns; the SMMU
            // reads it concurrently, so each doubleword is written once, whole.
            unsafe { core::ptr::write_volatile(&mut e.0[i], ste.0[i]) };
        }
        barrier::dsb(barrier::ISHST);
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(&mut e.0[0], ste.0[0]) };
        barrier::dsb(barrier::ISH);
    }
}

/// Programs and enables the SMMU (core 0, at boot, before any guest runs): the streams of
/// functions `owned` lists (stream ID, VM) get their VM's context descriptor and stage-1
/// tables and start out aborting; every other stream is invalid.
pub fn init(owned: &[(u32, VmId)]) -> Result<(), SmmuError> {
    let r = regs();
    if !r.idr0.is_set(IDR0::S1P) {
        return Err(SmmuError::Unsupported("no stage-1 translation"));
    }
    if r.idr0.read(IDR0::TTF) & 0b10 == 0 {
        return Err(SmmuError::Unsupported("no AArch64 tables"));
    }
    if r.idr0.read(IDR0::TTENDIAN) == 0b11 {
        return Err(SmmuError::Unsupported("big-endian tables only"));
    }
    if r.idr1.read(IDR1::SIDSIZE) < STREAMS_LOG2
        || r.idr1.read(IDR1::CMDQS) < CMDQ.log2size()
        || r.idr1.read(IDR1::EVENTQS) < EVENTQ.log2size()
    {
        return Err(SmmuError::Unsupported("stream IDs or queues too small"));
    }
    if !r.idr5.is_set(IDR5::GRAN4K) {
        return Err(SmmuError::Unsupported("no 4 KiB granule"));
    }
    let mut s = SMMU.lock();
    r.cr0.set(0);
    if !wait(|| r.cr0ack.get() == 0) {
        return Err(SmmuError::NoAck("disable"));
    }
    // Context descriptors and tables of every VM with devices.
    for (vm, cfg) in PARTITIONS.iter().enumerate() {
        if cfg.pci.is_empty() {
            continue;
        }
        let smmu = &mut *s;
        let mut t = Stage2::new(&mut smmu.tables[vm][..]);
        iopt::build(&mut t, cfg).map_err(|_| SmmuError::Tables(vm))?;
        smmu.cds[vm] = ContextDescriptor::new(t.root_addr(), asid(vm));
    }
    for &(sid, _) in owned {
        s.set_stream(sid, Ste::abort());
    }
    barrier::dsb(barrier::ISH);
    // Table walks and queue accesses: write-back, inner shareable (the hypervisor's mapping).
    r.cr1.write(
        CR1::QUEUE_IC.val(1)
            + CR1::QUEUE_OC.val(1)
            + CR1::QUEUE_SH.val(3)
            + CR1::TABLE_IC.val(1)
            + CR1::TABLE_OC.val(1)
            + CR1::TABLE_SH.val(3),
    );
    // Record events of unknown stream IDs; ignore broadcast TLB maintenance of the CPUs.
    r.cr2
        .write(CR2::E2H::CLEAR + CR2::RECINVSID::SET + CR2::PTM::SET);
    r.strtab_base.write(
        STRTAB_BASE::ADDR.val(&s.streams as *const StreamTable as u64 >> 6) + STRTAB_BASE::RA::SET,
    );
    r.strtab_base_cfg
        .write(STRTAB_BASE_CFG::FMT::Linear + STRTAB_BASE_CFG::LOG2SIZE.val(STREAMS_LOG2));
    r.cmdq_base.write(
        Q_BASE::ADDR.val(&s.cmdq as *const CmdQueue as u64 >> 5)
            + Q_BASE::LOG2SIZE.val(u64::from(CMDQ.log2size()))
            + Q_BASE::ALLOC::SET,
    );
    s.cmd_prod = 0;
    r.cmdq_prod.set(0);
    r.eventq_base.write(
        Q_BASE::ADDR.val(&s.eventq as *const EventQueue as u64 >> 5)
            + Q_BASE::LOG2SIZE.val(u64::from(EVENTQ.log2size()))
            + Q_BASE::ALLOC::SET,
    );
    r.eventq_cons.set(r.eventq_prod.get() & !OVERFLOW);
    r.cr0.write(CR0::CMDQEN::SET);
    if !wait(|| r.cr0ack.is_set(CR0::CMDQEN)) {
        return Err(SmmuError::NoAck("command queue enable"));
    }
    s.submit(&[cmd::cfgi_all(), cmd::tlbi_nsnh_all()])?;
    r.cr0.modify(CR0::EVENTQEN::SET);
    if !wait(|| r.cr0ack.is_set(CR0::EVENTQEN)) {
        return Err(SmmuError::NoAck("event queue enable"));
    }
    for intid in [irq::SMMU_EVENTQ, irq::SMMU_GERROR] {
        gic::set_edge(intid);
        gic::enable_spi(intid);
    }
    r.irq_ctrl
        .write(IRQ_CTRL::EVENTQ_IRQEN::SET + IRQ_CTRL::GERROR_IRQEN::SET);
    if !wait(|| r.irq_ctrlack.get() == r.irq_ctrl.get()) {
        return Err(SmmuError::NoAck("interrupt enable"));
    }
    r.cr0.modify(CR0::SMMUEN::SET);
    if !wait(|| r.cr0ack.is_set(CR0::SMMUEN)) {
        return Err(SmmuError::NoAck("enable"));
    }
    s.ready = true;
    Ok(())
}

/// The ASID of a VM's devices.
fn asid(vm: VmId) -> u16 {
    vm as u16 + 1
}

/// Whether the SMMU confines device DMA (programmed and enabled).
pub fn ready() -> bool {
    SMMU.lock().ready
}

/// Lets the streams `sids` of `vm` translate through its context (VM start).
pub fn attach(vm: VmId, sids: &[u32]) -> Result<(), SmmuError> {
    let mut s = SMMU.lock();
    if !s.ready {
        return Err(SmmuError::Unsupported("not enabled"));
    }
    let cd = &s.cds[vm] as *const ContextDescriptor as u64;
    for &sid in sids {
        s.set_stream(sid, Ste::translate(cd));
        s.submit(&[cmd::cfgi_ste(sid), cmd::cfgi_cd(sid)])?;
    }
    s.submit(&[cmd::tlbi_nh_asid(asid(vm))])
}

/// Makes the streams `sids` abort every transaction (VM stop); returns once the SMMU uses
/// the new entries.
pub fn detach(sids: &[u32]) -> Result<(), SmmuError> {
    let mut s = SMMU.lock();
    if !s.ready {
        return Ok(());
    }
    for &sid in sids {
        s.set_stream(sid, Ste::abort());
        s.submit(&[cmd::cfgi_ste(sid)])?;
    }
    Ok(())
}

/// Events read per interrupt at most (the queue's size).
const DRAIN: usize = 64;

/// Reads the pending event records (and an overflow), under the lock.
fn drain(out: &mut [Event; DRAIN]) -> (usize, bool) {
    let s = SMMU.lock();
    let r = regs();
    let mut n = 0;
    let mut cons = r.eventq_cons.get();
    let prod = r.eventq_prod.get();
    while n < DRAIN && !EVENTQ.is_empty(prod, cons) {
        // SAFETY: a volatile read of a queue slot the SMMU has published (between consumer
        // and producer); the lock keeps other cores from consuming it too.
        let rec = unsafe { core::ptr::read_volatile(&s.eventq.0[EVENTQ.slot(cons)]) };
        out[n] = Event::decode(&rec);
        n += 1;
        cons = EVENTQ.next(cons);
    }
    let overflow = (prod ^ cons) & OVERFLOW != 0;
    // Consume, and acknowledge an overflow by copying the flag.
    r.eventq_cons.set(EVENTQ.pointer(cons) | (prod & OVERFLOW));
    (n, overflow)
}

/// The SMMU's interrupts (routed to the work core): fault events and global errors. Calls
/// `on_events` with each batch of events read, outside the lock (it may stop a VM, which uses
/// the SMMU).
pub fn handle_irq(intid: u32, mut on_events: impl FnMut(&[Event])) {
    if intid == irq::SMMU_GERROR {
        let r = regs();
        let active = r.gerror.get() ^ r.gerrorn.get();
        if active != 0 {
            COUNTERS.gerrors.fetch_add(1, Ordering::Relaxed);
            if active & (1 << 2) != 0 {
                // QEMU reports a full event queue this way.
                COUNTERS.lost.fetch_add(1, Ordering::Relaxed);
            }
            hvprintln!(
                "smmu: global error {active:#x} (GERROR {:#x})",
                r.gerror.get()
            );
            r.gerrorn.set(r.gerror.get());
        }
        return;
    }
    let mut events = [Event::decode(&[0; 4]); DRAIN];
    loop {
        let (n, overflow) = drain(&mut events);
        if overflow {
            COUNTERS.lost.fetch_add(1, Ordering::Relaxed);
            hvprintln!("smmu: event queue overflowed: events were lost");
        }
        COUNTERS.events.fetch_add(n as u64, Ordering::Relaxed);
        on_events(&events[..n]);
        if n < DRAIN {
            break;
        }
    }
}
