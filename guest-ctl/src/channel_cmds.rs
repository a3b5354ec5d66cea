//! The control guest's side of the inter-guest channel: starting the endpoint at boot, and the
//! `ping` command that measures round trips through the LLM guest.

extern crate alloc;

use alloc::vec::Vec;

use guest_rt::channel::{audit, ctl, rtt};
use guest_rt::shared_ring::audit::{AuditEntry, Op, STATUS_OK, STATUS_REJECT};
use guest_rt::shell::{parse_u64, Command, Invocation};
use guest_rt::timer;

/// The channel commands of the control guest.
pub static COMMANDS: [Command; 1] = [Command {
    name: "ping",
    help: "ping [N]: N pings through the LLM guest (default 10, max 100000), rtt p50/p99",
    run: ping,
}];

/// Default and largest number of pings.
const PING_DEFAULT: u64 = 10;
const PING_MAX: u64 = 100_000;
/// How long one ping may wait for its pong.
const PING_TIMEOUT_MS: u64 = 500;
/// Consecutive timeouts after which `ping` gives up.
const GIVE_UP_AFTER: u32 = 3;

/// Initialises the shared region and starts the endpoint (boot core, before the shell).
pub fn start() {
    match ctl::start() {
        Ok(epoch) => guest_rt::println!("ctl: shared ring initialised, epoch {epoch}"),
        Err(e) => guest_rt::println!("ctl: shared ring unavailable: {e}"),
    }
}

fn ping(inv: &mut Invocation<'_, '_>) {
    let n = match inv.args {
        [_] => PING_DEFAULT,
        [_, n] => match parse_u64(n) {
            Some(n) if (1..=PING_MAX).contains(&n) => n,
            _ => {
                let _ = writeln!(inv.out, "ping: N must be 1..={PING_MAX}");
                return;
            }
        },
        _ => {
            let _ = writeln!(inv.out, "usage: ping [N]");
            return;
        }
    };
    let mut samples: Vec<u64> = Vec::new();
    if samples.try_reserve_exact(n as usize).is_err() {
        let _ = writeln!(inv.out, "ping: cannot allocate room for {n} samples");
        return;
    }
    let hz = timer::frequency();
    let timeout = hz / 1000 * PING_TIMEOUT_MS;
    let (mut timeouts, mut streak) = (0u64, 0u32);
    let mut stopped_by = None;
    for _ in 0..n {
        match ctl::ping_once(timeout) {
            Ok(rtt) => {
                samples.push(rtt);
                streak = 0;
            }
            Err(ctl::PingError::Timeout) => {
                timeouts += 1;
                streak += 1;
                if streak >= GIVE_UP_AFTER {
                    stopped_by = Some(ctl::PingError::Timeout);
                    break;
                }
            }
            Err(e) => {
                stopped_by = Some(e);
                break;
            }
        }
    }
    let replies = samples.len() as u64;
    match rtt::summarize(&mut samples) {
        Some(s) => {
            let us = |c| rtt::counts_to_us(c, hz);
            let _ = writeln!(
                inv.out,
                "ping: {replies}/{n} replies, rtt p50 {} us p99 {} us",
                us(s.p50),
                us(s.p99)
            );
            let _ = writeln!(
                inv.out,
                "ping: min {} us max {} us, {timeouts} timeouts",
                us(s.min),
                us(s.max)
            );
        }
        None => {
            let _ = writeln!(inv.out, "ping: 0/{n} replies, {timeouts} timeouts");
        }
    }
    match stopped_by {
        Some(ctl::PingError::Timeout) => {
            let _ = writeln!(
                inv.out,
                "ping: stopped after {GIVE_UP_AFTER} timeouts in a row (is the llm guest running?)"
            );
        }
        Some(e) => {
            let _ = writeln!(inv.out, "ping: stopped: {e}");
        }
        None => {}
    }
    let entry = AuditEntry {
        op: Op::RingPing as u16,
        status: if replies == n {
            STATUS_OK
        } else {
            STATUS_REJECT
        },
        tokens: replies as u32,
        extra: n,
        ..AuditEntry::default()
    };
    if let Err(e) = audit::append(&entry) {
        let _ = writeln!(inv.out, "ping: audit append failed: {e}");
    }
}
