//! Property tests: a hostile peer writing random index values and random bytes into the
//! consumer's side of a ring. The consumer must never panic, and never deliver a message that was
//! not sent (or deliver one twice, or out of order).

use proptest::prelude::*;
use shared_ring::mem::{Mem, Ordering};
use shared_ring::message::{InferFlags, Milli, Sampling};
use shared_ring::region::{self, RegionError};
use shared_ring::{
    attach, init, Geometry, HeapRegion, InferRequest, RawRegion, Request, RingGeometry,
};
use std::collections::HashMap;

const LEN: usize = 0x8000;
const RING_OFF: u64 = 0x1000;
const CAP: u64 = 8;
const SLOT: u64 = 256;
const BASE: usize = (RING_OFF / 8) as usize;
const HEAD: usize = BASE;
const TAIL: usize = BASE + 16;
const SLOTS: usize = BASE + 64;
const SLOT_WORDS: usize = (SLOT / 8) as usize;
const RING_WORDS: usize = 64 + CAP as usize * SLOT_WORDS;

fn geometry() -> Geometry {
    Geometry {
        requests: RingGeometry {
            offset: RING_OFF,
            capacity: CAP,
            slot_size: SLOT,
        },
        responses: RingGeometry {
            offset: 0x4000,
            capacity: 4,
            slot_size: 128,
        },
    }
}

fn pool(k: u8) -> Request {
    match k % 6 {
        0 => Request::Ping { t0: u64::from(k) },
        1 => Request::Status,
        2 => Request::Cancel { id: k.into() },
        3 => Request::Poll {
            id: 7,
            max: k.into(),
        },
        4 => Request::Budget {
            wcet_cycles: u64::from(k) << 40,
            period_ns: 1,
            max_tokens_per_period: 3,
        },
        _ => Request::Infer(InferRequest {
            id: k.into(),
            max_tokens: 9,
            sampling: Sampling {
                temp: Milli(0),
                seed: u64::MAX - u64::from(k),
                ..Sampling::DEFAULT
            },
            flags: InferFlags(InferFlags::STREAM),
            stop: Default::default(),
            system: Default::default(),
            session: None,
            prompt: heapless::String::try_from("p".repeat(usize::from(k)).as_str()).unwrap(),
        }),
    }
}

/// What the two real sides and the attacker do, one step at a time.
#[derive(Clone, Debug)]
enum Step {
    Send(u8),
    Recv,
    /// Publish this value as the head.
    Head(u64),
    /// Publish the real head plus this delta as the head.
    HeadNear(i8),
    /// Publish this value as the tail (attacks the producer).
    Tail(u64),
    /// Write a value into a word of a slot that holds no deliverable message.
    Scribble(usize, u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => any::<u8>().prop_map(Step::Send),
        4 => Just(Step::Recv),
        1 => any::<u64>().prop_map(Step::Head),
        2 => any::<i8>().prop_map(Step::HeadNear),
        1 => any::<u64>().prop_map(Step::Tail),
        2 => (0..CAP as usize * SLOT_WORDS, any::<u64>()).prop_map(|(w, v)| Step::Scribble(w, v)),
    ]
}

/// May the attacker scribble on slot `i`? Only if the message it holds (the latest position
/// `p < head` with `p % CAP == i`) can no longer be delivered: `p` is at or below the last
/// delivered sequence number. (Positions skipped by a resync are still deliverable after a
/// rewind, so "behind the consumer's current tail" is not enough.) Writing a slot that holds a
/// deliverable message would be the peer sending a message, not corrupting one.
fn may_scribble(i: usize, head: u64, last_delivered: Option<u64>) -> bool {
    let Some(last_written) = head.checked_sub(1) else {
        return true;
    };
    if last_written < i as u64 {
        return true; // never written
    }
    let p = last_written - (last_written - i as u64) % CAP;
    last_delivered.is_some_and(|l| p <= l)
}

proptest! {
    // 512 cases by default; PROPTEST_CASES overrides (e.g. 20000 for a long soak).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    /// Random index values (head and tail) and random words in slots that hold no deliverable
    /// message: everything delivered was sent with exactly that sequence number, in increasing
    /// order, each at most once.
    #[test]
    fn hostile_indices_never_yield_unsent_messages(steps in prop::collection::vec(step(), 1..200)) {
        let heap = HeapRegion::new(LEN);
        let mem = heap.region();
        let mut ctl = init(mem, &geometry()).unwrap();
        let mut llm = attach(mem).unwrap();
        let mut sent: HashMap<u64, Request> = HashMap::new();
        let mut last: Option<u64> = None;
        let (mut oks, mut errs) = (0u64, 0u64);
        for s in steps {
            match s {
                Step::Send(k) => {
                    let m = pool(k);
                    if let Ok(seq) = ctl.requests.send(&m) {
                        prop_assert!(sent.insert(seq, m).is_none(), "seq {} reused", seq);
                    }
                }
                Step::Recv => match llm.requests.try_recv() {
                    Ok(Some(r)) => {
                        oks += 1;
                        prop_assert_eq!(sent.get(&r.seq), Some(&r.msg), "unsent message");
                        prop_assert!(last.is_none_or(|l| r.seq > l), "out of order");
                        last = Some(r.seq);
                    }
                    Ok(None) => {}
                    Err(_) => errs += 1,
                },
                Step::Head(v) => mem.store(HEAD, v, Ordering::Release),
                Step::HeadNear(d) => {
                    let h = ctl.requests.next_seq().wrapping_add(d as i64 as u64);
                    mem.store(HEAD, h, Ordering::Release);
                }
                Step::Tail(v) => mem.store(TAIL, v, Ordering::Release),
                Step::Scribble(w, v) => {
                    let slot = w / SLOT_WORDS;
                    if may_scribble(slot, ctl.requests.next_seq(), last) {
                        mem.store(SLOTS + w, v, Ordering::Relaxed);
                    }
                }
            }
        }
        // Drain: bounded, no panic.
        for _ in 0..4 * CAP {
            match llm.requests.try_recv() {
                Ok(Some(r)) => {
                    oks += 1;
                    prop_assert_eq!(sent.get(&r.seq), Some(&r.msg));
                    prop_assert!(last.is_none_or(|l| r.seq > l));
                    last = Some(r.seq);
                }
                Ok(None) => break,
                Err(_) => errs += 1,
            }
        }
        let st = llm.requests.stats();
        prop_assert_eq!(st.received, oks);
        prop_assert_eq!(st.rejected.total(), errs);
    }

    /// The whole ring (indices, counters, every slot) filled with random bytes: the consumer
    /// rejects or delivers, never panics, and whatever it delivers carries its ring position as
    /// sequence number, in increasing order, and re-encodes within the slot.
    #[test]
    fn random_ring_bytes_never_panic(words in prop::collection::vec(any::<u64>(), RING_WORDS),
                                     head_delta in 0..=CAP,
                                     small_lens in any::<bool>()) {
        let heap = HeapRegion::new(LEN);
        let mem = heap.region();
        init(mem, &geometry()).unwrap();
        for (i, w) in words.iter().enumerate() {
            let mut v = *w;
            // Half the cases keep length words plausible so decoding gets exercised.
            if small_lens && i >= 64 && (i - 64) % SLOT_WORDS == 1 {
                v %= SLOT;
            }
            mem.store(BASE + i, v, Ordering::Relaxed);
        }
        let tail = mem.load(TAIL, Ordering::Relaxed);
        if head_delta > 0 {
            mem.store(HEAD, tail.wrapping_add(head_delta), Ordering::Relaxed);
            // Make some slots carry their own position so they reach the decoder.
            for k in 0..head_delta {
                let pos = tail.wrapping_add(k);
                let s = SLOTS + (pos % CAP) as usize * SLOT_WORDS;
                if k % 2 == 0 {
                    mem.store(s, pos, Ordering::Relaxed);
                }
            }
        }
        let mut llm = match attach(mem) {
            Ok(l) => l,
            Err(e) => return Err(TestCaseError::fail(format!("{e:?}"))),
        };
        let mut last: Option<u64> = None;
        for _ in 0..3 * CAP {
            match llm.requests.try_recv() {
                Ok(Some(r)) => {
                    prop_assert!(last.is_none_or(|l| r.seq > l));
                    last = Some(r.seq);
                    let mut buf = [0u8; SLOT as usize];
                    prop_assert!(postcard::to_slice(&r.msg, &mut buf).is_ok());
                }
                Ok(None) => break,
                Err(_) => {}
            }
        }
        let st = llm.requests.stats();
        prop_assert!(st.received + st.rejected.total() <= 3 * CAP);
    }

    /// A random header never makes attach (or a snapshot) panic; it either fails with an error
    /// or yields a geometry that passes validation.
    #[test]
    fn random_header_is_an_error_not_a_panic(words in prop::collection::vec(any::<u64>(), 32),
                                             keep in 0usize..11) {
        let heap = HeapRegion::new(LEN);
        let mem: RawRegion<'_> = heap.region();
        init(mem, &geometry()).unwrap();
        // Keep the first `keep` header words valid and randomise the rest.
        for (i, w) in words.iter().enumerate().skip(keep) {
            mem.store(i, *w, Ordering::Relaxed);
        }
        match attach(mem) {
            Ok(mut llm) => {
                let (g, _) = region::read_header(&mem).unwrap();
                prop_assert!(g.validate(LEN as u64).is_ok());
                let _ = llm.requests.try_recv();
                let _ = region::snapshot(&mem).unwrap();
            }
            Err(e) => prop_assert!(!matches!(e, RegionError::TooSmall)),
        }
    }
}
