//! Kernel glue of host control: finds the virtio devices, draws the secrets, owns the driver
//! and the control loop, and runs them from the console's interrupt and the timer tick.
//!
//! Locks: [`VCON`] is always taken before [`CONTROL`]; both mask IRQs, and guest-ctl runs on
//! one core, so the interrupt handler and shell commands never contend.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use guest_rt::sync::IrqMutex;
use guest_rt::{hypercall, irq, println, timer};
use shared_ring::audit::AuditEntry;
use sis_frame::auth::{Authenticator, RateLimitConfig, Secrets};
use sis_platform::BootInfo;
use virtio_drivers::transport::DeviceType;

use crate::control::{AuditOut, Control, HostOut, Now};
use crate::llm_link::{self, LINK};
use crate::vcon::{PortEvent, Vcon};
use crate::{dma, rng, virtio};

/// The virtio-console driver, once started.
pub static VCON: IrqMutex<Option<Vcon>> = IrqMutex::new(None);
/// The control loop (decoder, auth, reply FIFO, counters).
pub static CONTROL: IrqMutex<Control> = IrqMutex::new(Control::new(None, now_us));
/// INTID of the console (0 = none).
static VCON_INTID: AtomicU32 = AtomicU32::new(0);
/// Timer ticks on which the control loop's deadlines were checked.
static TICKS: AtomicU64 = AtomicU64::new(0);

/// The current time for the control loop.
pub fn now() -> Now {
    let freq = u128::from(timer::frequency().max(1));
    let c = u128::from(timer::uptime_counts());
    Now {
        ms: (c * 1000 / freq) as u64,
        us: (c * 1_000_000 / freq) as u64,
    }
}

/// Monotonic microseconds since boot.
fn now_us() -> u64 {
    now().us
}

impl HostOut for Vcon {
    fn send_line(&mut self, line: &[u8]) -> bool {
        Vcon::send_line(self, line)
    }
}

/// Audit records through the `HV_AUDIT_APPEND` hypercall.
pub struct HvAudit;

impl AuditOut for HvAudit {
    fn append(&mut self, entry: &AuditEntry) -> bool {
        hypercall::audit_append(entry.to_hypercall_args()).is_ok()
    }
}

/// Fresh secrets from the rng, redrawn while they fail validation (a zero word or two equal
/// words are astronomically rare from a working device); a device that keeps producing such
/// values is treated as broken.
pub fn draw_secrets() -> Result<Secrets, rng::RngError> {
    for _ in 0..8 {
        let s = Secrets {
            admin: rng::u64()?,
            submit: rng::u64()?,
            ctl_key: rng::u64()?,
        };
        if s.validate().is_ok() {
            return Ok(s);
        }
    }
    Err(rng::RngError::Device)
}

/// Brings up host control: devices, secrets, interrupt, tick. Prints what it found; missing
/// pieces leave the rest working (no rng: every token is refused; no console: no host).
pub fn init(info: &BootInfo) {
    dma::init(info);
    let mut console = None;
    virtio::probe(info, |found| match found.kind {
        DeviceType::EntropySource if !rng::present() => rng::init(found.transport, found.function),
        DeviceType::Console if console.is_none() => console = Some(found),
        _ => {}
    });
    match draw_secrets() {
        Ok(secrets) => match Authenticator::new(secrets, RateLimitConfig::DEFAULT) {
            Ok(a) => {
                CONTROL.lock().set_auth(a);
                println!("CTL: secrets drawn from virtio-rng (see ctlkey, ctlembed)");
            }
            Err(e) => println!("CTL: bad secrets ({e:?}): every host frame is refused"),
        },
        Err(e) => println!("CTL: {e}: no secrets, every host frame is refused with ERR 0x05"),
    }
    llm_link::init();
    let Some(found) = console else {
        println!("VCON: no virtio-console device: host control is off");
        return;
    };
    match Vcon::start(found.transport) {
        Ok(v) => {
            *VCON.lock() = Some(v);
            VCON_INTID.store(found.intid, Ordering::Relaxed);
            println!(
                "VCON: virtio-console at {}, INTID {}, binding port sis.datactl",
                found.function, found.intid
            );
            if let Err(e) = irq::enable(found.intid, on_irq) {
                println!("VCON: cannot enable INTID {}: {e:?}", found.intid);
                return;
            }
            timer::set_tick_hook(Some(on_tick));
            // Control messages may already be waiting.
            on_irq(found.intid);
            wait_bound();
        }
        Err(e) => println!("VCON: virtio-console at {} failed: {e}", found.function),
    }
}

/// How long boot waits for the device to announce the host-control port.
const BIND_WAIT_MS: u64 = 2000;

/// Waits (bounded) until the port is bound, so `VCON: READY` comes before the shell's first
/// prompt: the device answers the driver's `DEVICE_READY` asynchronously (its interrupt does
/// the binding). If it takes longer, binding still completes in the background.
fn wait_bound() {
    let deadline = now().ms + BIND_WAIT_MS;
    while now().ms < deadline {
        let bound = VCON.lock().as_ref().is_some_and(|v| v.link().2.is_some());
        if bound {
            return;
        }
        core::hint::spin_loop();
    }
    println!("VCON: port sis.datactl not announced yet, still waiting");
}

/// The console's interrupt: control messages, then host bytes through the control loop.
fn on_irq(_intid: u32) {
    let mut guard = VCON.lock();
    let Some(v) = guard.as_mut() else { return };
    v.ack();
    while let Some(ev) = v.poll_control() {
        match ev {
            PortEvent::Bound(id) => {
                println!("[VCON] BOUND port {id} to sis.datactl");
                println!("VCON: READY");
            }
            PortEvent::Host(_) => CONTROL.lock().host_changed(),
        }
    }
    serve_host(v);
}

/// Receive chunks handled per interrupt or tick: a host that never pauses cannot keep the
/// core in the interrupt handler for good; what is left is picked up at the next interrupt or
/// timer tick.
const CHUNKS_PER_PASS: usize = 32;

/// Runs received host bytes through the control loop (bounded), then pushes out replies.
fn serve_host(v: &mut Vcon) {
    let mut buf = [0u8; Vcon::RX_CHUNK];
    for _ in 0..CHUNKS_PER_PASS {
        let Some(n) = v.recv(&mut buf) else { break };
        let mut c = CONTROL.lock();
        let mut link = LINK.lock();
        c.on_bytes(&buf[..n], now(), v, &mut HvAudit, &mut *link);
    }
    v.flush();
}

/// Generation of the LLM VM when last seen running (0: not yet seen).
static LLM_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Whether frames waiting for the LLM partition can no longer be answered by it: it is stopped,
/// or it was restarted (a new generation lost the old one's requests). Then they get `ERR 0x06`
/// at once instead of at their deadline.
fn llm_went_away() -> bool {
    let Some(llm) = guest_rt::channel::peer() else {
        return false;
    };
    match hypercall::vm_state(llm as u64) {
        Ok((true, generation)) => {
            let seen = LLM_GENERATION.swap(generation, Ordering::Relaxed);
            seen != 0 && seen != generation
        }
        Ok((false, _)) => true,
        Err(_) => false,
    }
}

/// Every timer tick (on the boot core: the others have no host-control work): deadlines of
/// forwarded frames.
fn on_tick(core: usize) {
    if core as u64 != guest_rt::boot_info().boot_cpu {
        return;
    }
    TICKS.fetch_add(1, Ordering::Relaxed);
    let mut guard = VCON.lock();
    let Some(v) = guard.as_mut() else { return };
    // Leftovers of a bounded pass (and transmit buffers the device returned).
    serve_host(v);
    let mut c = CONTROL.lock();
    let t = now();
    // Checked every tick, so a restart is noticed even while nothing waits.
    let llm_gone = llm_went_away();
    if c.pending() > 0 {
        c.tick(t, llm_gone, v);
    }
    // Abandoned jobs once a second is plenty.
    if TICKS.load(Ordering::Relaxed).is_multiple_of(100) {
        llm_link::tick(t.ms, &mut c, v, &mut LINK.lock());
    }
}

/// INTID of the console, if one was started.
pub fn intid() -> Option<u32> {
    match VCON_INTID.load(Ordering::Relaxed) {
        0 => None,
        i => Some(i),
    }
}

/// Timer ticks the control loop has seen.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}
