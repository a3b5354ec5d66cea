//! Kernel glue of host control: finds the virtio devices, draws the secrets, and runs the one
//! [`HostCtl`] (the virtio-console driver and `sis_hostctl::HostControl`, the pure loop) from
//! the console's interrupt, the ring's responses and the timer tick.
//!
//! Everything host control keeps is in [`HostCtl`] behind one IRQ-masking lock: the console
//! interrupt, the doorbell interrupt (responses), the tick and the shell commands all take the
//! same lock, so there is no lock order to keep. guest-ctl runs on one core.

use guest_rt::channel::ctl::{self, ResponseHandler};
use guest_rt::sync::IrqMutex;
use guest_rt::{hypercall, irq, println, timer};
use shared_ring::audit::AuditEntry;
use shared_ring::{Received, Response};
use sis_frame::auth::{Authenticator, RateLimitConfig, Secrets};
use sis_hostctl::{AuditOut, HostControl, HostOut, LlmState, Now};
use sis_platform::BootInfo;
use virtio_drivers::transport::DeviceType;

use crate::ring_port::SharedRing;
use crate::vcon::{PortEvent, Vcon};
use crate::{dma, rng, virtio};

/// Host control's state: the console driver (once started) and the loop.
pub struct HostCtl {
    vcon: Option<Vcon>,
    control: HostControl,
    /// INTID of the console (0 = none).
    intid: u32,
    /// Timer ticks host control has seen.
    ticks: u64,
}

impl HostCtl {
    /// The console driver, if one was started.
    pub fn vcon(&self) -> Option<&Vcon> {
        self.vcon.as_ref()
    }

    /// The console driver, if one was started.
    pub fn vcon_mut(&mut self) -> Option<&mut Vcon> {
        self.vcon.as_mut()
    }

    /// The loop (counters, authenticator).
    pub fn control(&self) -> &HostControl {
        &self.control
    }

    /// The loop (authenticator changes).
    pub fn control_mut(&mut self) -> &mut HostControl {
        &mut self.control
    }

    /// INTID of the console, if one was started.
    pub fn intid(&self) -> Option<u32> {
        (self.intid != 0).then_some(self.intid)
    }

    /// Timer ticks host control has seen.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// Runs received host bytes through the loop (bounded), then pushes out replies.
    fn serve_host(&mut self) {
        let Some(v) = self.vcon.as_mut() else { return };
        let mut buf = [0u8; Vcon::RX_CHUNK];
        for _ in 0..CHUNKS_PER_PASS {
            let Some(n) = v.recv(&mut buf) else { break };
            self.control
                .on_bytes(&buf[..n], now(), v, &mut HvAudit, &mut SharedRing);
        }
        v.flush();
    }
}

/// The one host-control state.
static HOST: IrqMutex<HostCtl> = IrqMutex::new(HostCtl {
    vcon: None,
    control: HostControl::new(now_us),
    intid: 0,
    ticks: 0,
});

/// Runs `f` on host control's state (IRQs masked meanwhile: keep it short).
pub fn with<R>(f: impl FnOnce(&mut HostCtl) -> R) -> R {
    f(&mut HOST.lock())
}

/// The current time for the loop.
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

/// Drops lines when no console is bound.
struct Discard;

impl HostOut for Discard {
    fn send_line(&mut self, _line: &[u8]) -> bool {
        false
    }
}

/// Audit records through the runtime's audit API (`HV_AUDIT_APPEND`).
struct HvAudit;

impl AuditOut for HvAudit {
    fn append(&mut self, entry: &AuditEntry) -> bool {
        guest_rt::channel::audit::append(entry).is_ok()
    }
}

/// Responses from the LLM partition (doorbell interrupt).
struct Responses;

impl ResponseHandler for Responses {
    fn on_response(&self, response: Received<Response>) {
        let mut guard = HOST.lock();
        let h = &mut *guard;
        let now = now();
        match h.vcon.as_mut() {
            Some(v) => h.control.on_response(response.msg, now, v),
            None => h.control.on_response(response.msg, now, &mut Discard),
        }
    }
}

static RESPONSES: Responses = Responses;

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
                HOST.lock().control.set_auth(a);
                println!("CTL: secrets drawn from virtio-rng (see ctlkey, ctlembed)");
            }
            Err(e) => println!("CTL: bad secrets ({e:?}): every host frame is refused"),
        },
        Err(e) => println!("CTL: {e}: no secrets, every host frame is refused with ERR 0x05"),
    }
    ctl::set_response_handler(&RESPONSES);
    let Some(found) = console else {
        println!("VCON: no virtio-console device: host control is off");
        return;
    };
    match Vcon::start(found.transport) {
        Ok(v) => {
            {
                let mut h = HOST.lock();
                h.vcon = Some(v);
                h.intid = found.intid;
            }
            println!(
                "VCON: virtio-console at {}, INTID {}, binding port sis.datactl",
                found.function, found.intid
            );
            if let Err(e) = irq::enable(found.intid, &(on_irq as irq::Handler)) {
                println!("VCON: cannot enable INTID {}: {e:?}", found.intid);
                return;
            }
            timer::set_tick_hook(Some(&(on_tick as timer::TickHook)));
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
        let bound = HOST
            .lock()
            .vcon
            .as_ref()
            .is_some_and(|v| v.link().2.is_some());
        if bound {
            return;
        }
        core::hint::spin_loop();
    }
    println!("VCON: port sis.datactl not announced yet, still waiting");
}

/// The console's interrupt: control messages, then host bytes through the loop.
fn on_irq(_intid: u32) {
    let mut guard = HOST.lock();
    let h = &mut *guard;
    let Some(v) = h.vcon.as_mut() else { return };
    v.ack();
    while let Some(ev) = v.poll_control() {
        match ev {
            PortEvent::Bound(id) => {
                println!("[VCON] BOUND port {id} to sis.datactl");
                println!("VCON: READY");
            }
            PortEvent::Host(_) => h.control.host_changed(),
        }
    }
    h.serve_host();
}

/// Receive chunks handled per interrupt or tick: a host that never pauses cannot keep the
/// core in the interrupt handler for good; what is left is picked up at the next interrupt or
/// timer tick.
const CHUNKS_PER_PASS: usize = 32;

/// The LLM VM's state from the hypervisor.
fn llm_state() -> LlmState {
    let Some(llm) = guest_rt::channel::peer() else {
        return LlmState::Unknown;
    };
    match hypercall::vm_state(llm as u64) {
        Ok((true, generation)) => LlmState::Running { generation },
        Ok((false, _)) => LlmState::Stopped,
        Err(_) => LlmState::Unknown,
    }
}

/// Every timer tick (on the boot core: the others have no host-control work): leftovers of a bounded receive pass, deadlines of forwarded
/// frames, abandoned jobs.
fn on_tick(core: usize) {
    if core as u64 != guest_rt::boot_info().boot_cpu {
        return;
    }
    let mut guard = HOST.lock();
    let h = &mut *guard;
    h.ticks += 1;
    if h.vcon.is_none() {
        return;
    }
    // Leftovers of a bounded pass (and transmit buffers the device returned).
    h.serve_host();
    let state = llm_state();
    if let Some(v) = h.vcon.as_mut() {
        h.control.tick(now(), state, v);
    }
}
