//! The LLM guest's ring endpoint: consumes requests from the control guest, answers `Ping` with
//! `Pong` at once (so `ping` measures the channel, not the LLM), hands every other request to
//! an installed [`RequestHandler`] (the LLM service's ring front end), and sends responses with
//! back-pressure.

use core::sync::atomic::{AtomicU64, Ordering};

use guest_rt::channel::llm;
use guest_rt::shared_ring::message::ErrorCode;
use guest_rt::shared_ring::{Received, Request, Response};
use guest_rt::sync::IrqMutex;

pub use guest_rt::channel::llm::{SendFail, Sent};

/// Serves requests other than `Ping`.
pub trait RequestHandler: Sync {
    /// Called from the doorbell interrupt (boot core, IRQs masked) for every accepted request
    /// other than `Ping`, with its ring sequence number (responses name it as `req_seq`). Must
    /// not block or allocate: queue the work and answer later with [`send`]. Returning
    /// `Err(code)` makes the endpoint answer `Error { req_seq, code }` at once.
    fn on_request(&self, seq: u64, req: Request) -> Result<(), ErrorCode>;
}

static HANDLER: IrqMutex<Option<&'static dyn RequestHandler>> = IrqMutex::new(None);
/// Responses the endpoint itself could not send (pongs, errors).
static SEND_FAILURES: AtomicU64 = AtomicU64::new(0);

/// Installs the handler of non-`Ping` requests (replacing any previous one). Until one is
/// installed they are answered with `Error { code: Unavailable }`.
pub fn install(handler: &'static dyn RequestHandler) {
    *HANDLER.lock() = Some(handler);
}

/// Sends a response (tokens, done, errors) to the control guest. A full ring queues it in this
/// guest (counted as `full` by the ring) and it goes out on the next doorbell, [`poll`] or send;
/// callable from any core and from interrupt handlers.
///
/// # Errors
/// [`SendFail`]: not attached, too large, queue full (dropped and counted), or the control guest
/// is stopped.
pub fn send(resp: &Response) -> Result<Sent, SendFail> {
    llm::send(resp)
}

/// Thread-context upkeep for a service loop: re-attaches after a control-guest restart, sends
/// queued responses, and drains requests a bounded interrupt pass left behind.
pub fn poll() {
    llm::check_attach();
    let _ = llm::flush();
    llm::drain();
}

/// Starts the endpoint on the boot core (before the shell): waits up to 2 s for the control
/// guest's region, and keeps retrying on every doorbell after that.
pub fn start() {
    match llm::start(&(on_request as llm::RequestFn)) {
        Ok(Some(epoch)) => guest_rt::println!("llm: shared ring attached, epoch {epoch}"),
        Ok(None) => guest_rt::println!("llm: shared ring not initialised yet; attaching later"),
        Err(e) => guest_rt::println!("llm: shared ring unavailable: {e}"),
    }
}

fn reply(resp: &Response) {
    if send(resp).is_err() {
        SEND_FAILURES.fetch_add(1, Ordering::Relaxed);
    }
}

fn on_request(m: Received<Request>) {
    let req_seq = m.seq;
    match m.msg {
        Request::Ping { t0 } => reply(&Response::Pong { t0 }),
        req => {
            let handler = *HANDLER.lock();
            let code = match handler {
                Some(h) => h.on_request(req_seq, req).err(),
                None => Some(ErrorCode::Unavailable),
            };
            if let Some(code) = code {
                reply(&Response::Error { req_seq, code });
            }
        }
    }
}

/// Responses the endpoint itself failed to send (pongs and errors).
#[allow(dead_code)] // for the LLM service's status report
pub fn send_failures() -> u64 {
    SEND_FAILURES.load(Ordering::Relaxed)
}
