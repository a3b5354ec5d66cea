//! Loom model tests: every interleaving (up to the preemption bound) of the ring and audit
//! protocols under the C11 memory model. Run with `shared-ring/scripts/loom.sh` (sets `--cfg loom`).
#![cfg(loom)]

use loom::thread;
use shared_ring::audit::{
    AuditEntry, AuditReader, AuditRecord, AuditWriter, SegmentSpec, STATUS_OK,
};
use shared_ring::mem::LoomRegion;
use shared_ring::{attach, init, Geometry, Request, RingGeometry, SendError};

/// Header, then two rings of two 24-byte slots (one payload word each).
const LEN: usize = 1408;

fn tiny() -> Geometry {
    Geometry {
        requests: RingGeometry {
            offset: 256,
            capacity: 2,
            slot_size: 24,
        },
        responses: RingGeometry {
            offset: 832,
            capacity: 2,
            slot_size: 24,
        },
    }
}

/// Three messages through a two-slot ring: the producer meets back-pressure, the consumer sees
/// every message exactly once, in order, with the payload that was written (a relaxed head
/// store would let it read a stale payload and fail here).
#[test]
fn spsc_delivers_in_order_under_back_pressure() {
    loom::model(|| {
        let mem = LoomRegion::new(LEN);
        let mut ctl = init(mem.clone(), &tiny()).unwrap();
        let mut llm = attach(mem).unwrap();
        let p = thread::spawn(move || {
            for t0 in 0..3u64 {
                loop {
                    match ctl.requests.send(&Request::Ping { t0 }) {
                        Ok(seq) => {
                            assert_eq!(seq, t0);
                            break;
                        }
                        Err(SendError::Full) => thread::yield_now(),
                        Err(e) => panic!("send failed: {e:?}"),
                    }
                }
            }
        });
        let mut next = 0u64;
        while next < 3 {
            match llm.requests.try_recv() {
                Ok(Some(r)) => {
                    assert_eq!(r.seq, next);
                    assert_eq!(r.msg, Request::Ping { t0: next });
                    next += 1;
                }
                Ok(None) => thread::yield_now(),
                Err(e) => panic!("rejected: {e:?}"),
            }
        }
        p.join().unwrap();
        assert_eq!(llm.requests.stats().rejected.total(), 0);
    });
}

/// The LLM guest attaching while the control guest initialises: attach either fails cleanly
/// (not initialised yet) or sees a complete header and working rings.
#[test]
fn attach_races_init() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(|| {
        let mem = LoomRegion::new(LEN);
        let m2 = mem.clone();
        let c = thread::spawn(move || {
            let mut ctl = init(m2, &tiny()).unwrap();
            ctl.requests.send(&Request::Status).unwrap();
        });
        let mut llm = loop {
            match attach(mem.clone()) {
                Ok(l) => break l,
                Err(_) => thread::yield_now(),
            }
        };
        c.join().unwrap();
        let r = llm.requests.recv().expect("message sent after init");
        assert_eq!((r.seq, r.msg), (0, Request::Status));
    });
}

fn entry(i: u64) -> AuditEntry {
    AuditEntry {
        op: 3,
        status: STATUS_OK,
        prompt_len: i as u32,
        tokens: i as u32,
        wcet_cycles: i,
        period_ns: i,
        extra: i,
    }
}

/// A reader racing a writer that wraps a one-record log never returns a torn record.
#[test]
fn audit_seqlock_never_tears() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| {
        let mem = LoomRegion::new(64 + 64 + 64);
        let mut w = AuditWriter::init(
            mem.clone(),
            &[SegmentSpec {
                writer: 1,
                subject: 1,
                weight: 1,
            }],
        )
        .unwrap();
        let r = AuditReader::attach(mem).unwrap();
        let t = thread::spawn(move || {
            for i in 1..=2u64 {
                w.append(1, 1, i, &entry(i)).unwrap();
            }
        });
        let mut out = [AuditRecord::default(); 1];
        for from in 1..=2u64 {
            let b = r.read(0, from, &mut out);
            for rec in &out[..b.count] {
                assert_eq!(rec.entry, entry(rec.seq), "torn record");
                assert_eq!(rec.ts_ns, rec.seq);
            }
        }
        t.join().unwrap();
    });
}
