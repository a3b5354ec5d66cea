//! The hostile producer: whatever garbage it writes, the consumer rejects it, never panics,
//! and after `finish` every real message gets through again.

use shared_ring::hostile::{Hostile, JunkKind, Rng};
use shared_ring::region;
use shared_ring::{attach, init, Geometry, HeapRegion, RejectReason, Response};

const LEN: usize = 0x10_0000;

fn pong(t0: u64) -> Response {
    Response::Pong { t0 }
}

/// Drains everything the consumer will take; returns (accepted pongs with t0 >= 1000, rejected).
fn drain<M: shared_ring::Mem>(c: &mut shared_ring::Consumer<Response, M>) -> (Vec<u64>, u64) {
    let mut good = Vec::new();
    let mut bad = 0;
    for _ in 0..10_000 {
        match c.try_recv() {
            Ok(Some(m)) => {
                if let Response::Pong { t0 } = m.msg {
                    if t0 >= 1000 {
                        good.push(t0);
                    }
                }
            }
            Ok(None) => break,
            Err(_) => bad += 1,
        }
    }
    (good, bad)
}

#[test]
fn consumer_survives_every_kind_and_recovers() {
    for seed in 1..40u64 {
        let heap = HeapRegion::new(LEN);
        let mut ctl = init(heap.region(), &Geometry::DEFAULT).unwrap();
        let mut llm = attach(heap.region()).unwrap();
        // Some real traffic first.
        for i in 0..5 {
            llm.responses.send(&pong(i)).unwrap();
        }
        assert_eq!(drain(&mut ctl.responses).1, 0);

        let mut rng = Rng::new(seed);
        let mut h = Hostile::begin(&mut llm.responses);
        let mut rejected = 0;
        for _ in 0..(8 + seed % 17) {
            let r = h.round(&mut rng);
            if seed % 2 == 0 {
                // The consumer drains while garbage is published.
                rejected += drain(&mut ctl.responses).1;
            }
            assert!(r.slots <= shared_ring::hostile::MAX_SLOTS_PER_ROUND);
        }
        let head = h.finish();
        // The header is intact again.
        assert!(region::read_header(&heap.region()).is_ok(), "seed {seed}");
        rejected += drain(&mut ctl.responses).1;
        assert!(rejected > 0, "seed {seed}: garbage went unnoticed");
        assert_eq!(
            ctl.responses.next_seq(),
            head,
            "seed {seed}: consumer not in step"
        );

        // Real messages all get through, in order.
        for i in 0..20 {
            llm.responses.send(&pong(1000 + i)).unwrap();
        }
        let (good, bad) = drain(&mut ctl.responses);
        assert_eq!(bad, 0, "seed {seed}");
        assert_eq!(good, (1000..1020).collect::<Vec<_>>(), "seed {seed}");
    }
}

#[test]
fn each_kind_is_rejected_for_its_reason() {
    let cases = [
        (JunkKind::BadLength, RejectReason::BadLength),
        (JunkKind::HeadFarAhead, RejectReason::BadIndex),
        (JunkKind::RandomSlots, RejectReason::BadSequence),
    ];
    for (kind, reason) in cases {
        let heap = HeapRegion::new(LEN);
        let mut ctl = init(heap.region(), &Geometry::DEFAULT).unwrap();
        let mut llm = attach(heap.region()).unwrap();
        let mut rng = Rng::new(7);
        let mut h = Hostile::begin(&mut llm.responses);
        h.write(kind, &mut rng);
        let (_, bad) = drain(&mut ctl.responses);
        assert!(bad > 0, "{kind:?}");
        assert!(
            ctl.responses.stats().rejected.get(reason) > 0,
            "{kind:?}: {:?}",
            ctl.responses.stats()
        );
        h.finish();
    }
}

#[test]
fn header_field_is_restored() {
    let heap = HeapRegion::new(LEN);
    let _ctl = init(heap.region(), &Geometry::DEFAULT).unwrap();
    let mut llm = attach(heap.region()).unwrap();
    let before = region::read_header(&heap.region()).unwrap();
    let mut rng = Rng::new(3);
    let mut h = Hostile::begin(&mut llm.responses);
    // Every header word the generator can pick is non-zero-forced random: the header breaks.
    for _ in 0..4 {
        h.write(JunkKind::HeaderField, &mut rng);
    }
    assert!(region::read_header(&heap.region()).is_err());
    h.finish();
    assert_eq!(region::read_header(&heap.region()).unwrap(), before);
}

#[test]
fn producer_notices_a_scribbled_tail_only_when_it_matters() {
    let heap = HeapRegion::new(LEN);
    let mut ctl = init(heap.region(), &Geometry::DEFAULT).unwrap();
    let mut llm = attach(heap.region()).unwrap();
    let mut rng = Rng::new(11);
    let mut h = Hostile::begin(&mut llm.responses);
    h.write(JunkKind::TailScribble, &mut rng);
    let head = h.finish();
    // The consumer republishes its own tail when it next takes; after that sends work.
    drain(&mut ctl.responses);
    assert_eq!(ctl.responses.next_seq(), head);
    llm.responses.send(&pong(1000)).unwrap();
    assert_eq!(drain(&mut ctl.responses).0, vec![1000]);
    // The producer's published counters are visible to the consumer.
    assert_eq!(ctl.responses.peer_stats().sent, llm.responses.stats().sent);
}
