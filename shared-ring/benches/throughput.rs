//! Two-thread throughput of the shared ring next to `rtrb`, in one run.
//!
//! `cargo bench -p shared-ring [-- [--quick] [CASE-FILTER...]]`. For each case the producer
//! thread pushes N messages (spinning, then yielding, while full) and the consumer thread pops
//! and touches them; the two queues run alternating rounds and the best round of each is
//! reported, with the ratio shared-ring / rtrb (> 1 means shared-ring is faster).
//!
//! * `raw`: shared-ring moves N-byte payloads (`send_bytes`/`try_recv_bytes`, 16-byte slot
//!   header, slots rounded to 64 bytes), rtrb moves `[u8; N]` values.
//! * `1 thread`: one thread fills and drains the ring: CPU cost per message, no cross-core
//!   traffic.
//! * `typed`: shared-ring postcard-encodes and validates/decodes real messages; rtrb moves the
//!   same Rust values without any encoding (an upper bound no shared-memory channel can match).

use shared_ring::message::{Bytes, InferFlags, Milli, Sampling};
use shared_ring::ring::{FrameBuf, MAX_PAYLOAD};
use shared_ring::{
    attach, init, Geometry, HeapRegion, InferRequest, Request, Response, RingGeometry,
};
use std::hint::black_box;

/// Waiting strategy shared by both queues: spin briefly, then give the core away (the machine
/// may have fewer free cores than the two threads need).
struct Backoff(u32);

impl Backoff {
    fn new() -> Self {
        Self(0)
    }
    fn wait(&mut self) {
        self.0 += 1;
        if self.0 < 64 {
            std::hint::spin_loop();
        } else {
            self.0 = 0;
            std::thread::yield_now();
        }
    }
}
use std::time::{Duration, Instant};

/// Region with both rings of `cap` slots of `slot` bytes.
fn region(cap: u64, slot: u64) -> (HeapRegion, Geometry) {
    let span = 512 + cap * slot;
    let off2 = (0x1000 + span).div_ceil(0x1000) * 0x1000;
    let g = Geometry {
        requests: RingGeometry {
            offset: 0x1000,
            capacity: cap,
            slot_size: slot,
        },
        responses: RingGeometry {
            offset: off2,
            capacity: cap,
            slot_size: slot,
        },
    };
    (HeapRegion::new((off2 + span) as usize), g)
}

fn ours_raw<const N: usize>(cap: u64, count: u64) -> Duration {
    let slot = (16 + N as u64).div_ceil(64) * 64;
    let (heap, g) = region(cap, slot);
    let mut ctl = init(heap.region(), &g).unwrap();
    let mut llm = attach(heap.region()).unwrap();
    let msg = [0x5au8; N];
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut bk = Backoff::new();
            for i in 0..count {
                let mut m = msg;
                m[0] = i as u8;
                while ctl.requests.send_bytes(&m).is_err() {
                    bk.wait();
                }
            }
        });
        let mut buf: FrameBuf = [0; MAX_PAYLOAD];
        let mut bk = Backoff::new();
        let mut got = 0;
        let mut sum = 0u64;
        while got < count {
            match llm.requests.try_recv_bytes(&mut buf) {
                Ok(Some((_, len))) => {
                    sum += u64::from(buf[0]) + len as u64;
                    got += 1;
                }
                Ok(None) => bk.wait(),
                Err(e) => panic!("{e:?}"),
            }
        }
        black_box(sum);
    });
    t.elapsed()
}

fn rtrb_raw<const N: usize>(cap: u64, count: u64) -> Duration {
    let (mut p, mut c) = rtrb::RingBuffer::<[u8; N]>::new(cap as usize);
    let msg = [0x5au8; N];
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut bk = Backoff::new();
            for i in 0..count {
                let mut m = msg;
                m[0] = i as u8;
                while let Err(rtrb::PushError::Full(back)) = p.push(m) {
                    m = back;
                    bk.wait();
                }
            }
        });
        let mut bk = Backoff::new();
        let mut got = 0;
        let mut sum = 0u64;
        while got < count {
            match c.pop() {
                Ok(m) => {
                    let m = black_box(m);
                    sum += u64::from(m[0]) + N as u64;
                    got += 1;
                }
                Err(_) => bk.wait(),
            }
        }
        black_box(sum);
    });
    t.elapsed()
}

/// One thread alternately fills and drains the ring: the per-message CPU cost without the
/// cross-core cache traffic (steadier than the two-thread figure on a loaded machine).
fn ours_raw_st<const N: usize>(cap: u64, count: u64) -> Duration {
    let slot = (16 + N as u64).div_ceil(64) * 64;
    let (heap, g) = region(cap, slot);
    let mut ctl = init(heap.region(), &g).unwrap();
    let mut llm = attach(heap.region()).unwrap();
    let msg = [0x5au8; N];
    let mut buf: FrameBuf = [0; MAX_PAYLOAD];
    let mut sum = 0u64;
    let t = Instant::now();
    for _ in 0..count / cap {
        for _ in 0..cap {
            ctl.requests.send_bytes(black_box(&msg)).unwrap();
        }
        for _ in 0..cap {
            let (_, len) = llm.requests.try_recv_bytes(&mut buf).unwrap().unwrap();
            sum += u64::from(black_box(&buf)[0]) + len as u64;
        }
    }
    black_box(sum);
    t.elapsed()
}

fn rtrb_raw_st<const N: usize>(cap: u64, count: u64) -> Duration {
    let (mut p, mut c) = rtrb::RingBuffer::<[u8; N]>::new(cap as usize);
    let msg = [0x5au8; N];
    let mut sum = 0u64;
    let t = Instant::now();
    for _ in 0..count / cap {
        for _ in 0..cap {
            p.push(black_box(msg)).unwrap();
        }
        for _ in 0..cap {
            let m = black_box(c.pop().unwrap());
            sum += u64::from(m[0]) + N as u64;
        }
    }
    black_box(sum);
    t.elapsed()
}

fn tokens(i: u64) -> Response {
    Response::Tokens {
        id: i as u32,
        n: 4,
        text: Bytes::from_slice(&[b'a'; 64]).unwrap(),
    }
}

fn infer(i: u64) -> Request {
    Request::Infer(InferRequest {
        id: i as u32,
        max_tokens: 64,
        sampling: Sampling {
            temp: Milli(700),
            seed: i,
            ..Sampling::DEFAULT
        },
        flags: InferFlags(InferFlags::STREAM),
        stop: Default::default(),
        system: Default::default(),
        session: None,
        prompt: heapless::String::try_from("q".repeat(1024).as_str()).unwrap(),
    })
}

/// Typed messages: encoded in place and decoded by shared-ring, moved as Rust values by rtrb.
fn ours_typed(cap: u64, count: u64, big: bool) -> Duration {
    let (heap, g) = region(cap, 1088);
    let mut ctl = init(heap.region(), &g).unwrap();
    let mut llm = attach(heap.region()).unwrap();
    let (req, resp) = (infer(0), tokens(0));
    let t = Instant::now();
    std::thread::scope(|s| {
        if big {
            s.spawn(move || {
                let mut bk = Backoff::new();
                for _ in 0..count {
                    while ctl.requests.send(&req).is_err() {
                        bk.wait();
                    }
                }
            });
            let mut bk = Backoff::new();
            let mut got = 0;
            while got < count {
                match llm.requests.try_recv() {
                    Ok(Some(r)) => {
                        black_box(&r);
                        got += 1;
                    }
                    Ok(None) => bk.wait(),
                    Err(e) => panic!("{e:?}"),
                }
            }
        } else {
            s.spawn(move || {
                let mut bk = Backoff::new();
                for _ in 0..count {
                    while llm.responses.send(&resp).is_err() {
                        bk.wait();
                    }
                }
            });
            let mut bk = Backoff::new();
            let mut got = 0;
            while got < count {
                match ctl.responses.try_recv() {
                    Ok(Some(r)) => {
                        black_box(&r);
                        got += 1;
                    }
                    Ok(None) => bk.wait(),
                    Err(e) => panic!("{e:?}"),
                }
            }
        }
    });
    t.elapsed()
}

fn rtrb_typed<T: Clone + Send>(cap: u64, count: u64, msg: T) -> Duration {
    let (mut p, mut c) = rtrb::RingBuffer::<T>::new(cap as usize);
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut bk = Backoff::new();
            for _ in 0..count {
                let mut m = msg.clone();
                while let Err(rtrb::PushError::Full(back)) = p.push(m) {
                    m = back;
                    bk.wait();
                }
            }
        });
        let mut bk = Backoff::new();
        let mut got = 0;
        while got < count {
            match c.pop() {
                Ok(m) => {
                    black_box(&m);
                    got += 1;
                }
                Err(_) => bk.wait(),
            }
        }
    });
    t.elapsed()
}

/// Best round: on a shared machine the fastest round is the one least disturbed by others.
fn best(v: Vec<Duration>) -> Duration {
    v.into_iter().min().unwrap_or_default()
}

/// Runs the case only if it matches the command-line filter (any non-flag argument).
fn selected(name: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

fn report(
    name: &str,
    bytes: u64,
    count: u64,
    rounds: usize,
    ours: impl Fn() -> Duration,
    theirs: impl Fn() -> Duration,
) {
    if !selected(name) {
        return;
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        a.push(ours());
        b.push(theirs());
    }
    let (a, b) = (best(a), best(b));
    let rate = |d: Duration| count as f64 / d.as_secs_f64();
    let (ra, rb) = (rate(a), rate(b));
    println!(
        "{name:<26} shared-ring {:>7.2} Mmsg/s {:>8.1} MB/s | rtrb {:>7.2} Mmsg/s {:>8.1} MB/s | ratio {:.2}",
        ra / 1e6,
        ra * bytes as f64 / 1e6,
        rb / 1e6,
        rb * bytes as f64 / 1e6,
        ra / rb
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // Many short rounds, best kept: on a shared machine a short round has a fair chance of
    // running with both threads on a core each.
    let (rounds, scale) = if quick { (5, 4) } else { (25, 1) };
    let cap = 256;
    let n64 = 400_000 / scale;
    let n1k = 100_000 / scale;
    println!(
        "capacity {cap} slots, best of {rounds} alternating rounds; ratio = shared-ring / rtrb"
    );
    report(
        "raw 64 B",
        64,
        n64,
        rounds,
        || ours_raw::<64>(cap, n64),
        || rtrb_raw::<64>(cap, n64),
    );
    report(
        "raw 1 KiB",
        1024,
        n1k,
        rounds,
        || ours_raw::<1024>(cap, n1k),
        || rtrb_raw::<1024>(cap, n1k),
    );
    report(
        "1 thread raw 64 B",
        64,
        n64,
        rounds,
        || ours_raw_st::<64>(cap, n64),
        || rtrb_raw_st::<64>(cap, n64),
    );
    report(
        "1 thread raw 1 KiB",
        1024,
        n1k,
        rounds,
        || ours_raw_st::<1024>(cap, n1k),
        || rtrb_raw_st::<1024>(cap, n1k),
    );
    report(
        "typed Tokens (64 B text)",
        64,
        n64,
        rounds,
        || ours_typed(cap, n64, false),
        || rtrb_typed(cap, n64, tokens(0)),
    );
    report(
        "typed Infer (1 KiB prompt)",
        1024,
        n1k,
        rounds,
        || ours_typed(cap, n1k, true),
        || rtrb_typed(cap, n1k, infer(0)),
    );
}
