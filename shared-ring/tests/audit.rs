//! Audit log writer/reader tests: append, wrap-around counting, torn-read protection, JSON.

use shared_ring::audit::{
    write_json, write_json_array, AuditEntry, AuditError, AuditReader, AuditRecord, AuditWriter,
    Op, ReadBatch, STATUS_DEADLINE_MISS, STATUS_OK, STATUS_REJECT,
};
use shared_ring::mem::{Mem, Ordering};
use shared_ring::HeapRegion;

/// Header plus `n` records.
fn region(n: usize) -> HeapRegion {
    HeapRegion::new(64 + 64 * n)
}

fn entry(i: u64) -> AuditEntry {
    AuditEntry {
        op: (i % 4 + 1) as u16,
        status: if i.is_multiple_of(3) {
            STATUS_REJECT
        } else {
            STATUS_OK
        },
        prompt_len: i as u32,
        tokens: (i * 2) as u32,
        wcet_cycles: i * 3,
        period_ns: i * 5,
        extra: i * 7,
    }
}

#[test]
fn append_then_read_returns_every_record_in_order() {
    let heap = region(16);
    let mut w = AuditWriter::init(heap.region()).unwrap();
    for i in 1..=10u64 {
        assert_eq!(w.append((i % 2) as u16, 1000 + i, &entry(i)), Ok(i));
    }
    let r = AuditReader::attach(heap.region()).unwrap();
    let st = r.stats();
    assert_eq!((st.capacity, st.write_seq, st.overwritten), (16, 10, 0));
    let mut out = [AuditRecord::default(); 4];
    let mut got = Vec::new();
    let mut from = 0;
    loop {
        let b = r.read(from, &mut out);
        assert_eq!(b.lost, 0);
        got.extend_from_slice(&out[..b.count]);
        from = b.next_seq;
        if b.count == 0 {
            break;
        }
    }
    assert_eq!(got.len(), 10);
    for (k, rec) in got.iter().enumerate() {
        let i = k as u64 + 1;
        assert_eq!(rec.seq, i);
        assert_eq!(rec.ts_ns, 1000 + i);
        assert_eq!(rec.vm_id, (i % 2) as u16);
        assert_eq!(rec.entry, entry(i));
    }
    assert_eq!(from, 11);
}

#[test]
fn wrap_overwrites_oldest_and_counts_every_loss() {
    let heap = region(8);
    let mut w = AuditWriter::init(heap.region()).unwrap();
    for i in 1..=21u64 {
        w.append(1, i, &entry(i)).unwrap();
    }
    assert_eq!(w.stats().overwritten, 13);
    let r = AuditReader::attach(heap.region()).unwrap();
    assert_eq!(r.stats().overwritten, 13);
    let mut out = [AuditRecord::default(); 32];
    let b = r.read(1, &mut out);
    assert_eq!(
        b,
        ReadBatch {
            count: 8,
            next_seq: 22,
            lost: 13
        }
    );
    let seqs: Vec<u64> = out[..8].iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (14..=21).collect::<Vec<_>>());
    assert_eq!(out[0].entry, entry(14));
    assert_eq!(r.read_one(13), None);
    assert_eq!(r.read_one(0), None);
    assert_eq!(r.read_one(22), None);
    // Reading from the future returns nothing and does not move.
    assert_eq!(r.read(50, &mut out).next_seq, 50);
}

#[test]
fn invalid_entries_are_refused_counted_and_not_written() {
    let heap = region(4);
    let mut w = AuditWriter::init(heap.region()).unwrap();
    let mut bad = entry(1);
    bad.op = 0;
    assert_eq!(w.append(0, 0, &bad), Err(AuditError::BadOp(0)));
    bad.op = 99;
    assert_eq!(w.append(0, 0, &bad), Err(AuditError::BadOp(99)));
    let mut bad = entry(1);
    bad.status = 0b1000;
    assert_eq!(w.append(0, 0, &bad), Err(AuditError::BadStatus(8)));
    let r = AuditReader::attach(heap.region()).unwrap();
    assert_eq!(r.stats().invalid, 3);
    assert_eq!(r.stats().write_seq, 0);
    assert_eq!(r.read(0, &mut [AuditRecord::default(); 4]).count, 0);
}

#[test]
fn hypercall_packing_round_trips_and_validates() {
    for i in [1u64, 2, 3, 4, 1000] {
        let mut e = entry(i);
        e.status = STATUS_OK | STATUS_DEADLINE_MISS;
        e.prompt_len = u32::MAX;
        e.tokens = u32::MAX - 1;
        assert_eq!(
            AuditEntry::from_hypercall_args(e.to_hypercall_args()),
            Ok(e)
        );
    }
    let mut x = entry(1).to_hypercall_args();
    x[1] |= 1 << 40;
    assert_eq!(
        AuditEntry::from_hypercall_args(x),
        Err(AuditError::Reserved)
    );
    assert_eq!(
        AuditEntry::from_hypercall_args([14, 0, 0, 0, 0]),
        Err(AuditError::BadOp(14))
    );
    assert_eq!(
        AuditEntry::from_hypercall_args([3 | 0xf0 << 16, 0, 0, 0, 0]),
        Err(AuditError::BadStatus(0xf0))
    );
    assert_eq!(Op::from_code(4), Some(Op::Stream));
    assert_eq!(Op::from_code(11).map(Op::name), Some("vm_start"));
    assert_eq!(Op::from_code(12), Some(Op::RingPing));
    assert_eq!(Op::from_code(12).map(Op::name), Some("ring_ping"));
    assert_eq!(Op::from_code(13), Some(Op::DmaFault));
    assert_eq!(Op::from_code(13).map(Op::name), Some("dma_fault"));
}

#[test]
fn reader_rejects_bad_regions() {
    let heap = region(4);
    assert!(AuditReader::attach(heap.region()).is_err());
    AuditWriter::init(heap.region()).unwrap();
    let mem = heap.region();
    mem.store(3, 1000, Ordering::Relaxed);
    assert!(matches!(
        AuditReader::attach(mem),
        Err(AuditError::BadRegion(_))
    ));
    mem.store(3, 4, Ordering::Relaxed);
    assert!(AuditReader::attach(mem).is_ok());
    let tiny = HeapRegion::new(64);
    assert!(AuditWriter::init(tiny.region()).is_err());
}

#[test]
fn json_uses_seed_field_names() {
    let rec = AuditRecord {
        seq: 7,
        ts_ns: 123,
        vm_id: 1,
        entry: AuditEntry {
            op: 3,
            status: STATUS_OK,
            prompt_len: 26,
            tokens: 4,
            wcet_cycles: 25000,
            period_ns: 0,
            extra: 9,
        },
    };
    let mut s = String::new();
    write_json(&rec, &mut s).unwrap();
    assert_eq!(
        s,
        r#"{"op":3,"prompt_len":26,"tokens":4,"wcet_cycles":25000,"period_ns":0,"ts_ns":123,"status":1,"vm":1,"seq":7,"extra":9}"#
    );
    let mut s = String::new();
    write_json_array(&[], &mut s).unwrap();
    assert_eq!(s, "[]");
    let mut s = String::new();
    write_json_array(&[rec, rec], &mut s).unwrap();
    assert!(s.starts_with("[{\"op\":3,") && s.contains("},{") && s.ends_with("}]"));
}

/// A reader racing a writer that wraps a tiny log many times never sees a torn record: every
/// field it returns is the one written with that sequence number.
#[test]
fn racing_reader_never_returns_a_torn_record() {
    let heap = region(2);
    let mut w = AuditWriter::init(heap.region()).unwrap();
    let r = AuditReader::attach(heap.region()).unwrap();
    const N: u64 = 200_000;
    let (mut seen, mut lost) = (0u64, 0u64);
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 1..=N {
                w.append((i % 3) as u16, i * 11, &entry(i)).unwrap();
            }
        });
        let mut out = [AuditRecord::default(); 2];
        let mut from = 1;
        while from <= N {
            let b = r.read(from, &mut out);
            for rec in &out[..b.count] {
                assert_eq!(rec.ts_ns, rec.seq * 11);
                assert_eq!(rec.vm_id, (rec.seq % 3) as u16);
                assert_eq!(rec.entry, entry(rec.seq), "torn record {}", rec.seq);
            }
            seen += b.count as u64;
            lost += b.lost;
            from = b.next_seq;
        }
    });
    assert_eq!(seen + lost, N);
    assert!(seen > 0);
    let st = AuditReader::attach(heap.region()).unwrap().stats();
    assert_eq!(st.overwritten, N - 2);
}

#[test]
fn newest_returns_the_last_records_oldest_first() {
    let heap = region(8);
    let mut w = AuditWriter::init(heap.region()).unwrap();
    let r = AuditReader::attach(heap.region()).unwrap();
    let mut out = [AuditRecord::default(); 3];
    assert_eq!(r.newest(&mut out).count, 0);
    for i in 1..=12u64 {
        w.append(0, i, &entry(i)).unwrap();
    }
    let b = r.newest(&mut out);
    assert_eq!((b.count, b.next_seq, b.lost), (3, 13, 0));
    let seqs: Vec<u64> = out.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [10, 11, 12]);
    // Asking for more than the log keeps: the kept records, no loss reported.
    let mut big = [AuditRecord::default(); 20];
    let b = r.newest(&mut big);
    assert_eq!((b.count, b.lost, big[0].seq, big[7].seq), (8, 0, 5, 12));
}
