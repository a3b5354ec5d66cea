//! Ring protocol tests over a heap region, including a peer that scribbles on shared memory.

use shared_ring::mem::{Mem, Ordering};
use shared_ring::message::{
    Bytes, Done, DoneStatus, ErrorCode, InferFlags, Milli, Sampling, StatusSnapshot, MAX_CHUNK,
    MAX_PROMPT, MAX_STOPS, MAX_STOP_LEN, MAX_SYSTEM,
};
use shared_ring::region::{self, RegionError, HEADER_SIZE, MAGIC};
use shared_ring::{
    attach, init, Geometry, HeapRegion, InferRequest, RejectReason, Request, Response,
    RingGeometry, SendError,
};

const LEN: usize = 0x10_0000;

/// Word indices of the default request ring.
struct Words {
    head: usize,
    tail: usize,
    slots: usize,
    slot_words: usize,
    cap: u64,
}

fn req_words() -> Words {
    let g = Geometry::DEFAULT.requests;
    let base = (g.offset / 8) as usize;
    Words {
        head: base,
        tail: base + 16,
        slots: base + 64,
        slot_words: (g.slot_size / 8) as usize,
        cap: g.capacity,
    }
}

fn infer(id: u32, prompt: &str) -> Request {
    Request::Infer(InferRequest {
        id,
        max_tokens: 32,
        sampling: Sampling {
            temp: Milli(700),
            seed: 42,
            ..Sampling::DEFAULT
        },
        flags: InferFlags(InferFlags::CHAT | InferFlags::STREAM),
        stop: Default::default(),
        system: Default::default(),
        session: None,
        prompt: heapless::String::try_from(prompt).unwrap(),
    })
}

fn all_requests() -> Vec<Request> {
    vec![
        Request::Load {
            wcet_cycles: 25_000,
        },
        Request::Budget {
            wcet_cycles: 1,
            period_ns: u64::MAX,
            max_tokens_per_period: 7,
        },
        infer(9, "why op b slow?"),
        infer(10, &"é".repeat(MAX_PROMPT / 2)),
        Request::Cancel { id: 9 },
        Request::Poll { id: 9, max: 16 },
        Request::Status,
        Request::Ping { t0: 12345 },
    ]
}

fn all_responses() -> Vec<Response> {
    vec![
        Response::Ack { req_seq: 3 },
        Response::Error {
            req_seq: 4,
            code: ErrorCode::NoModel,
        },
        Response::Tokens {
            id: 9,
            n: 3,
            text: Bytes::from_slice(&[0xff; MAX_CHUNK]).unwrap(),
        },
        Response::Done(Done {
            id: 9,
            tokens: 32,
            prompt_len: 26,
            elapsed_ns: 1 << 40,
            cycles: u64::MAX,
            status: DoneStatus(DoneStatus::OK | DoneStatus::DEADLINE_MISS),
            error: None,
            reused: 0,
        }),
        Response::Done(Done {
            id: 10,
            tokens: 3,
            prompt_len: 26,
            elapsed_ns: 7,
            cycles: 8,
            status: DoneStatus(DoneStatus::REJECT),
            error: Some(ErrorCode::Internal),
            reused: 0,
        }),
        Response::Status(StatusSnapshot {
            model_loaded: true,
            wcet_cycles: 3,
            period_ns: 4,
            max_tokens_per_period: 5,
            jobs: 6,
            tokens_total: 7,
            deadline_misses: 8,
            rejected: 9,
        }),
        Response::Pong { t0: 77 },
    ]
}

#[test]
fn every_message_round_trips_with_its_sequence_number() {
    let heap = HeapRegion::new(LEN);
    let mut ctl = init(heap.region(), &Geometry::DEFAULT).unwrap();
    let mut llm = attach(heap.region()).unwrap();
    assert_eq!(ctl.epoch, 1);
    assert_eq!(llm.epoch, 1);
    for (i, m) in all_requests().iter().enumerate() {
        assert_eq!(ctl.requests.send(m).unwrap(), i as u64);
    }
    for (i, m) in all_requests().into_iter().enumerate() {
        let r = llm.requests.try_recv().unwrap().unwrap();
        assert_eq!((r.seq, r.msg), (i as u64, m));
    }
    assert_eq!(llm.requests.try_recv(), Ok(None));
    for m in all_responses() {
        llm.responses.send(&m).unwrap();
    }
    for (i, m) in all_responses().into_iter().enumerate() {
        let r = ctl.responses.try_recv().unwrap().unwrap();
        assert_eq!((r.seq, r.msg), (i as u64, m));
    }
    assert_eq!(ctl.requests.stats().sent, 8);
    assert_eq!(llm.requests.stats().received, 8);
    assert_eq!(llm.requests.stats().rejected.total(), 0);
}

#[test]
fn largest_messages_fit_default_slots() {
    let heap = HeapRegion::new(LEN);
    let mut ctl = init(heap.region(), &Geometry::DEFAULT).unwrap();
    let big = infer(u32::MAX, &"x".repeat(MAX_PROMPT));
    let Request::Infer(mut i) = big else {
        unreachable!()
    };
    i.max_tokens = u16::MAX;
    i.sampling = Sampling {
        temp: Milli(u16::MAX),
        top_k: u32::MAX,
        top_p: Milli(u16::MAX),
        min_p: Milli(u16::MAX),
        repeat_penalty: Milli(u16::MAX),
        repeat_last_n: u32::MAX,
        seed: u64::MAX,
    };
    i.stop = (0..MAX_STOPS)
        .map(|_| heapless::String::try_from("s".repeat(MAX_STOP_LEN).as_str()).unwrap())
        .collect();
    i.system = heapless::String::try_from("y".repeat(MAX_SYSTEM).as_str()).unwrap();
    i.session = Some(shared_ring::message::SessionRef {
        id: u64::MAX,
        open: true,
    });
    ctl.requests.send(&Request::Infer(i)).unwrap();
    let mut llm = attach(heap.region()).unwrap();
    let tok = Response::Tokens {
        id: u32::MAX,
        n: u16::MAX,
        text: Bytes::from_slice(&[0x80; MAX_CHUNK]).unwrap(),
    };
    llm.responses.send(&tok).unwrap();
    assert_eq!(ctl.responses.recv().unwrap().msg, tok);
}

#[test]
fn full_ring_refuses_and_counts_without_overwriting() {
    let heap = HeapRegion::new(LEN);
    let mut ctl = init(heap.region(), &Geometry::DEFAULT).unwrap();
    let mut llm = attach(heap.region()).unwrap();
    let cap = ctl.requests.capacity();
    for i in 0..cap {
        ctl.requests.send(&Request::Ping { t0: i }).unwrap();
    }
    assert_eq!(ctl.requests.send(&Request::Status), Err(SendError::Full));
    assert_eq!(ctl.requests.send(&Request::Status), Err(SendError::Full));
    assert_eq!(ctl.requests.stats().full, 2);
    // Nothing was overwritten: the consumer gets exactly the first `cap` pings.
    let r = llm.requests.recv().unwrap();
    assert_eq!((r.seq, r.msg), (0, Request::Ping { t0: 0 }));
    // One slot freed: one more send fits, then full again.
    assert_eq!(ctl.requests.send(&Request::Status), Ok(cap));
    assert_eq!(ctl.requests.send(&Request::Status), Err(SendError::Full));
    for i in 1..cap {
        assert_eq!(llm.requests.recv().unwrap().msg, Request::Ping { t0: i });
    }
    assert_eq!(llm.requests.recv().unwrap().msg, Request::Status);
    assert!(llm.requests.recv().is_none());
    let snap = region::snapshot(&heap.region()).unwrap();
    assert_eq!(snap.requests.producer.full, 3);
    assert_eq!(snap.requests.producer.sent, cap + 1);
    assert_eq!(snap.requests.consumer.received, cap + 1);
    assert_eq!(snap.requests.head, snap.requests.tail);
}

#[test]
fn oversized_payload_is_refused_and_nothing_published() {
    let heap = HeapRegion::new(LEN);
    let g = Geometry {
        requests: RingGeometry {
            offset: 0x1000,
            capacity: 4,
            slot_size: 64,
        },
        ..Geometry::DEFAULT
    };
    let mut ctl = init(heap.region(), &g).unwrap();
    let mut llm = attach(heap.region()).unwrap();
    assert_eq!(ctl.requests.max_payload(), 48);
    assert_eq!(
        ctl.requests.send(&infer(1, &"y".repeat(100))),
        Err(SendError::TooLarge)
    );
    assert_eq!(ctl.requests.send_bytes(&[0; 49]), Err(SendError::TooLarge));
    assert_eq!(ctl.requests.stats().too_large, 2);
    assert_eq!(llm.requests.try_recv(), Ok(None));
    // A message of exactly the payload size passes.
    let max = infer(2, &"z".repeat(48 - 18));
    let mut buf = [0u8; 256];
    let n = postcard::to_slice(&max, &mut buf).unwrap().len();
    assert_eq!(n, 48);
    ctl.requests.send(&max).unwrap();
    assert_eq!(llm.requests.recv().unwrap().msg, max);
    assert_eq!(ctl.requests.next_seq(), 1);
}

#[test]
fn attach_rejects_bad_headers_without_panicking() {
    let heap = HeapRegion::new(LEN);
    let mem = heap.region();
    assert_eq!(attach(mem).unwrap_err(), RegionError::BadMagic(0));
    init(mem, &Geometry::DEFAULT).unwrap();
    // Version.
    mem.store(1, 99, Ordering::Relaxed);
    assert_eq!(attach(mem).unwrap_err(), RegionError::BadVersion(99));
    mem.store(1, 1, Ordering::Relaxed);
    // Length.
    mem.store(2, 4096, Ordering::Relaxed);
    assert!(matches!(
        attach(mem).unwrap_err(),
        RegionError::LengthMismatch { header: 4096, .. }
    ));
    mem.store(2, LEN as u64, Ordering::Relaxed);
    // Geometry: non power-of-two capacity, huge slot, offset past the end, overlap.
    for (word, bad) in [(5, 100), (6, 4096), (4, u64::MAX - 7), (7, 0x1000), (4, 8)] {
        let old = mem.load(word, Ordering::Relaxed);
        mem.store(word, bad, Ordering::Relaxed);
        assert!(
            matches!(attach(mem).unwrap_err(), RegionError::BadGeometry(_)),
            "word {word} = {bad}"
        );
        mem.store(word, old, Ordering::Relaxed);
    }
    assert!(attach(mem).is_ok());
    // A region smaller than the header.
    let tiny = HeapRegion::new(HEADER_SIZE - 64);
    assert_eq!(attach(tiny.region()).unwrap_err(), RegionError::TooSmall);
    // A geometry that does not fit is refused by init and changes nothing.
    let small = HeapRegion::new(0x4000);
    assert!(matches!(
        init(small.region(), &Geometry::DEFAULT),
        Err(RegionError::BadGeometry(_))
    ));
    assert_eq!(small.region().load(0, Ordering::Relaxed), 0);
}

#[test]
fn impossible_head_is_rejected_and_consumer_resyncs_to_it() {
    let heap = HeapRegion::new(LEN);
    let mem = heap.region();
    let w = req_words();
    let mut ctl = init(mem, &Geometry::DEFAULT).unwrap();
    let mut llm = attach(mem).unwrap();
    ctl.requests.send(&Request::Ping { t0: 1 }).unwrap();
    // The peer publishes a head far beyond the ring.
    mem.store(w.head, 1_000_000, Ordering::Release);
    let e = llm.requests.try_recv().unwrap_err();
    assert_eq!(e.reason, RejectReason::BadIndex);
    assert_eq!(e.pos, 1_000_000);
    assert_eq!(llm.requests.next_seq(), 1_000_000);
    assert_eq!(mem.load(w.tail, Ordering::Relaxed), 1_000_000);
    // The real producer publishes its next message at head 2: behind the new tail, so the
    // consumer resyncs again, then follows the producer normally.
    ctl.requests.send(&Request::Ping { t0: 2 }).unwrap();
    assert_eq!(
        llm.requests.try_recv().unwrap_err().reason,
        RejectReason::BadIndex
    );
    assert_eq!(llm.requests.try_recv(), Ok(None));
    // The producer's cached tail is now behind: its next refill check must not panic.
    ctl.requests.send(&Request::Ping { t0: 3 }).unwrap();
    let r = llm.requests.recv().unwrap();
    assert_eq!((r.seq, r.msg), (2, Request::Ping { t0: 3 }));
    assert_eq!(llm.requests.stats().rejected.get(RejectReason::BadIndex), 2);
    assert_eq!(w.cap, ctl.requests.capacity());
}

#[test]
fn stale_slot_is_rejected_by_sequence_number() {
    let heap = HeapRegion::new(LEN);
    let mem = heap.region();
    let w = req_words();
    let mut ctl = init(mem, &Geometry::DEFAULT).unwrap();
    let mut llm = attach(mem).unwrap();
    ctl.requests.send(&Request::Ping { t0: 1 }).unwrap();
    // The peer claims three messages when only one was written.
    mem.store(w.head, 3, Ordering::Release);
    assert_eq!(llm.requests.recv().unwrap().msg, Request::Ping { t0: 1 });
    for pos in [1, 2] {
        let e = llm.requests.try_recv().unwrap_err();
        assert_eq!((e.pos, e.reason), (pos, RejectReason::BadSequence));
    }
    assert_eq!(llm.requests.try_recv(), Ok(None));
}

#[test]
fn bad_length_decode_and_trailing_are_rejected_by_reason() {
    let heap = HeapRegion::new(LEN);
    let mem = heap.region();
    let w = req_words();
    let mut ctl = init(mem, &Geometry::DEFAULT).unwrap();
    let mut llm = attach(mem).unwrap();
    // Slot 0: length word corrupted after publishing.
    ctl.requests.send(&Request::Status).unwrap();
    mem.store(w.slots + 1, 1 << 40, Ordering::Relaxed);
    // Slot 1: bytes that are not a Request (variant index 200).
    ctl.requests.send_bytes(&[200, 1, 2]).unwrap();
    // Slot 2: a valid Status followed by junk.
    ctl.requests.send_bytes(&[5, 0]).unwrap();
    // Slot 3: a prompt claiming invalid UTF-8.
    ctl.requests
        .send_bytes(&[2, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0xff, 0xfe])
        .unwrap();
    // Slot 4: fine.
    ctl.requests.send(&Request::Ping { t0: 5 }).unwrap();
    let reasons: Vec<_> = (0..4)
        .map(|_| llm.requests.try_recv().unwrap_err().reason)
        .collect();
    assert_eq!(
        reasons,
        [
            RejectReason::BadLength,
            RejectReason::Decode,
            RejectReason::Trailing,
            RejectReason::Decode
        ]
    );
    let r = llm.requests.try_recv().unwrap().unwrap();
    assert_eq!((r.seq, r.msg), (4, Request::Ping { t0: 5 }));
    let st = llm.requests.stats();
    assert_eq!(st.received, 1);
    assert_eq!(st.rejected.total(), 4);
    let snap = region::snapshot(&mem).unwrap();
    assert_eq!(snap.requests.consumer, st);
    assert_eq!(w.slot_words, 208);
}

#[test]
fn recv_skips_rejects_but_never_loops_past_one_ring() {
    let heap = HeapRegion::new(LEN);
    let mem = heap.region();
    let mut ctl = init(mem, &Geometry::DEFAULT).unwrap();
    let mut llm = attach(mem).unwrap();
    for _ in 0..3 {
        ctl.requests.send_bytes(&[0xff]).unwrap();
    }
    ctl.requests.send(&Request::Status).unwrap();
    assert_eq!(llm.requests.recv().unwrap().msg, Request::Status);
    assert_eq!(llm.requests.stats().rejected.get(RejectReason::Decode), 3);
}

#[test]
fn producer_refuses_on_impossible_tail() {
    let heap = HeapRegion::new(LEN);
    let mem = heap.region();
    let w = req_words();
    let mut ctl = init(mem, &Geometry::DEFAULT).unwrap();
    for i in 0..w.cap {
        ctl.requests.send(&Request::Ping { t0: i }).unwrap();
    }
    // The consumer claims to have read past the head.
    mem.store(w.tail, w.cap + 5, Ordering::Release);
    assert_eq!(
        ctl.requests.send(&Request::Status),
        Err(SendError::CorruptTail)
    );
    assert_eq!(ctl.requests.stats().corrupt_tail, 1);
    assert_eq!(mem.load(w.head, Ordering::Relaxed), w.cap);
}

#[test]
fn llm_restart_resumes_and_ctl_restart_bumps_epoch() {
    let heap = HeapRegion::new(LEN);
    let mut ctl = init(heap.region(), &Geometry::DEFAULT).unwrap();
    {
        let mut llm = attach(heap.region()).unwrap();
        ctl.requests.send(&Request::Status).unwrap();
        assert!(llm.requests.recv().is_some());
        llm.responses.send(&Response::Pong { t0: 1 }).unwrap();
    }
    // A new LLM incarnation continues at the published positions.
    ctl.requests.send(&Request::Ping { t0: 2 }).unwrap();
    let mut llm = attach(heap.region()).unwrap();
    let r = llm.requests.recv().unwrap();
    assert_eq!((r.seq, r.msg), (1, Request::Ping { t0: 2 }));
    llm.responses.send(&Response::Pong { t0: 3 }).unwrap();
    assert_eq!(ctl.responses.recv().unwrap().msg, Response::Pong { t0: 1 });
    let r = ctl.responses.recv().unwrap();
    assert_eq!((r.seq, r.msg), (1, Response::Pong { t0: 3 }));
    // Control restarts: new epoch, positions back to zero.
    let ctl2 = init(heap.region(), &Geometry::DEFAULT).unwrap();
    assert_eq!(ctl2.epoch, 2);
    assert_eq!(region::epoch(&heap.region()), Ok(2));
    assert_eq!(ctl2.requests.next_seq(), 0);
    assert_eq!(heap.region().load(0, Ordering::Relaxed), MAGIC);
}

#[test]
fn threads_transfer_every_message_in_order() {
    let heap = HeapRegion::new(LEN);
    let g = Geometry {
        requests: RingGeometry {
            offset: 0x1000,
            capacity: 4,
            slot_size: 128,
        },
        ..Geometry::DEFAULT
    };
    let mut ctl = init(heap.region(), &g).unwrap();
    let mut llm = attach(heap.region()).unwrap();
    const N: u64 = 20_000;
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..N {
                let m = Request::Poll {
                    id: i as u32,
                    max: (i % 7) as u16,
                };
                while ctl.requests.send(&m) == Err(SendError::Full) {
                    std::hint::spin_loop();
                }
            }
            assert_eq!(ctl.requests.stats().sent, N);
        });
        s.spawn(move || {
            let mut next = 0;
            while next < N {
                match llm.requests.try_recv() {
                    Ok(Some(r)) => {
                        assert_eq!(r.seq, next);
                        assert_eq!(
                            r.msg,
                            Request::Poll {
                                id: next as u32,
                                max: (next % 7) as u16
                            }
                        );
                        next += 1;
                    }
                    Ok(None) => std::hint::spin_loop(),
                    Err(e) => panic!("rejected {e:?}"),
                }
            }
            assert_eq!(llm.requests.stats().rejected.total(), 0);
        });
    });
}

#[test]
fn head_moved_backwards_never_replays_a_message() {
    let heap = HeapRegion::new(LEN);
    let mem = heap.region();
    let w = req_words();
    let mut ctl = init(mem, &Geometry::DEFAULT).unwrap();
    let mut llm = attach(mem).unwrap();
    for t0 in 0..5 {
        ctl.requests.send(&Request::Ping { t0 }).unwrap();
    }
    for _ in 0..5 {
        llm.requests.recv().unwrap();
    }
    // The peer rewinds the head to 2: the consumer resyncs its tail to 2...
    mem.store(w.head, 2, Ordering::Release);
    assert_eq!(
        llm.requests.try_recv().unwrap_err().reason,
        RejectReason::BadIndex
    );
    // ...and when the real head (6) shows up again, slots 2..4 still hold valid-looking
    // messages 2..4, which must not be delivered twice.
    ctl.requests.send(&Request::Ping { t0: 5 }).unwrap();
    for pos in 2..5 {
        let e = llm.requests.try_recv().unwrap_err();
        assert_eq!((e.pos, e.reason), (pos, RejectReason::BadSequence));
    }
    let r = llm.requests.try_recv().unwrap().unwrap();
    assert_eq!((r.seq, r.msg), (5, Request::Ping { t0: 5 }));
}

#[test]
fn consumer_attached_over_a_scribbled_tail_recovers() {
    let heap = HeapRegion::new(LEN);
    let mem = heap.region();
    let w = req_words();
    let mut ctl = init(mem, &Geometry::DEFAULT).unwrap();
    // The peer scribbles the (not yet attached) consumer's tail with a huge value.
    mem.store(w.tail, u64::MAX - 3, Ordering::Relaxed);
    let mut llm = attach(mem).unwrap();
    assert_eq!(llm.requests.next_seq(), u64::MAX - 3);
    ctl.requests.send(&Request::Status).unwrap();
    assert_eq!(
        llm.requests.try_recv().unwrap_err().reason,
        RejectReason::BadIndex
    );
    // Resynced to the real head (1); the next message is delivered normally.
    ctl.requests.send(&Request::Ping { t0: 9 }).unwrap();
    let r = llm.requests.recv().unwrap();
    assert_eq!((r.seq, r.msg), (1, Request::Ping { t0: 9 }));
}

#[test]
fn unreachable_head_is_counted_once_and_ignored() {
    let heap = HeapRegion::new(LEN);
    let mem = heap.region();
    let w = req_words();
    let mut ctl = init(mem, &Geometry::DEFAULT).unwrap();
    let mut llm = attach(mem).unwrap();
    ctl.requests.send(&Request::Ping { t0: 1 }).unwrap();
    assert!(llm.requests.recv().is_some());
    // A head no producer can reach: slot stamps "the lap before" live up there.
    mem.store(w.head, u64::MAX, Ordering::Release);
    assert_eq!(
        llm.requests.try_recv().unwrap_err().reason,
        RejectReason::BadIndex
    );
    for _ in 0..3 {
        assert_eq!(llm.requests.try_recv(), Ok(None));
    }
    assert_eq!(llm.requests.next_seq(), 1);
    assert_eq!(llm.requests.stats().rejected.get(RejectReason::BadIndex), 1);
    // The real producer carries on and is followed.
    ctl.requests.send(&Request::Ping { t0: 2 }).unwrap();
    let r = llm.requests.recv().unwrap();
    assert_eq!((r.seq, r.msg), (1, Request::Ping { t0: 2 }));
}

#[test]
fn every_ring_error_has_its_host_code() {
    use ErrorCode::*;
    let all = [
        BadRequest,
        NoModel,
        UnknownId,
        Rejected,
        Busy,
        Cancelled,
        Internal,
        Unavailable,
        ContextFull,
        SessionEvicted,
    ];
    let codes: Vec<u8> = all.iter().map(|e| e.host_code()).collect();
    assert_eq!(
        codes,
        [0x01, 0x03, 0x08, 0x09, 0x09, 0x0a, 0x0a, 0x06, 0x0b, 0x0c]
    );
}
