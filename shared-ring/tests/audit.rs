//! Audit log writer/reader tests: per-writer segments, writer identity, hypervisor-only ops,
//! wrap-around counting per segment, gap detection, merged listings, torn-read protection, JSON.

use proptest::prelude::*;
use shared_ring::audit::{
    standard_segments, write_json, write_json_array, AuditEntry, AuditError, AuditReader,
    AuditRecord, AuditWriter, Op, ReadBatch, SegmentSpec, Text, STATUS_DEADLINE_MISS, STATUS_OK,
    STATUS_REJECT, VM_HYPERVISOR,
};
use shared_ring::mem::{Mem, Ordering};
use shared_ring::HeapRegion;

const HV: u16 = VM_HYPERVISOR;

/// Header, `segs` descriptors, then `n` records.
fn region(segs: usize, n: usize) -> HeapRegion {
    HeapRegion::new(64 + 64 * segs + 64 * n)
}

/// One segment for guest 1 only.
fn one() -> [SegmentSpec; 1] {
    [SegmentSpec {
        writer: 1,
        subject: 1,
        weight: 1,
    }]
}

/// A guest op (never hypervisor-only): load, budget, infer, stream.
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

fn op(op: Op) -> AuditEntry {
    AuditEntry {
        op: op as u16,
        status: STATUS_OK,
        ..AuditEntry::default()
    }
}

fn all(r: &AuditReader<shared_ring::RawRegion<'_>>) -> (Vec<AuditRecord>, u64) {
    let mut v = Vec::new();
    let l = r.for_each(|_| true, |rec| v.push(*rec));
    assert_eq!(l.count, v.len());
    (v, l.lost)
}

#[test]
fn append_then_read_returns_every_record_in_order() {
    let heap = region(1, 16);
    let mut w = AuditWriter::init(heap.region(), &one()).unwrap();
    for i in 1..=10u64 {
        assert_eq!(w.append(1, 1, 1000 + i, &entry(i)), Ok(i));
    }
    let r = AuditReader::attach(heap.region()).unwrap();
    let st = r.stats();
    assert_eq!((st.capacity, st.write_seq, st.overwritten), (16, 10, 0));
    let mut out = [AuditRecord::default(); 4];
    let mut got = Vec::new();
    let mut from = 0;
    loop {
        let b = r.read(0, from, &mut out);
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
        assert_eq!((rec.vm_id, rec.writer), (1, 1));
        assert_eq!(rec.entry, entry(i));
    }
    assert_eq!(from, 11);
}

#[test]
fn standard_layout_gives_each_writer_and_subject_a_segment() {
    let heap = HeapRegion::new(1 << 20);
    let w = AuditWriter::init(heap.region(), &standard_segments(2)).unwrap();
    let caps: Vec<(u16, u16, u64)> = w
        .segment_stats()
        .map(|s| (s.writer, s.subject, s.capacity))
        .collect();
    // 16384 blocks: header, 5 descriptors, 16378 records split 7:7:1:1:1.
    assert_eq!(
        caps,
        [
            (0, 0, 6742),
            (1, 1, 6742),
            (HV, 0, 964),
            (HV, 1, 964),
            (HV, HV, 966)
        ]
    );
    let r = AuditReader::attach(heap.region()).unwrap();
    assert_eq!(r.stats().capacity, 16378);
    assert_eq!(r.segment(HV, 1), Some(3));
    assert_eq!(r.segment(0, 1), None);
}

#[test]
fn hypervisor_records_name_the_hypervisor_as_writer_and_the_vm_as_subject() {
    let heap = HeapRegion::new(64 * 64);
    let mut w = AuditWriter::init(heap.region(), &standard_segments(2)).unwrap();
    w.append(HV, 1, 5, &op(Op::VmStart)).unwrap();
    w.append(1, 1, 6, &op(Op::Infer)).unwrap();
    w.append(HV, 0, 7, &op(Op::VmFault)).unwrap();
    let r = AuditReader::attach(heap.region()).unwrap();
    let (recs, lost) = all(&r);
    assert_eq!(lost, 0);
    let who: Vec<(u16, u16, u16)> = recs
        .iter()
        .map(|r| (r.writer, r.vm_id, r.entry.op))
        .collect();
    assert_eq!(
        who,
        [
            (HV, 1, Op::VmStart as u16),
            (1, 1, Op::Infer as u16),
            (HV, 0, Op::VmFault as u16)
        ]
    );
    let names = |id: u16| match id {
        HV => "hv",
        0 => "ctl",
        _ => "llm",
    };
    let line = Text(&recs[0], names).to_string();
    assert!(
        line.starts_with("#1 by=hv t=5ns vm=llm op=11(vm_start) status=0b001"),
        "{line}"
    );
}

#[test]
fn guests_cannot_append_hypervisor_only_ops_or_write_about_others() {
    let heap = HeapRegion::new(64 * 64);
    let mut w = AuditWriter::init(heap.region(), &standard_segments(2)).unwrap();
    for o in [Op::VmStart, Op::VmFault, Op::DmaFault] {
        assert!(o.hypervisor_only());
        assert_eq!(
            w.append(0, 0, 1, &op(o)),
            Err(AuditError::Forbidden(o as u16))
        );
    }
    // A guest has no segment about another VM, nor may it pose as the hypervisor's segment.
    assert_eq!(
        w.append(0, 1, 1, &op(Op::Infer)),
        Err(AuditError::NoSegment)
    );
    assert_eq!(
        w.append(0, HV, 1, &op(Op::Infer)),
        Err(AuditError::NoSegment)
    );
    assert!(!Op::Infer.hypervisor_only() && !Op::CtlAllow.hypervisor_only());
    let r = AuditReader::attach(heap.region()).unwrap();
    let s = r.segment_stats(r.segment(0, 0).unwrap());
    assert_eq!((s.refused, s.write_seq, s.invalid), (3, 0, 0));
    assert_eq!(r.stats().refused, 3);
    assert_eq!(all(&r).0.len(), 0, "nothing written");
}

#[test]
fn a_flooding_guest_wraps_only_its_own_segment() {
    let heap = HeapRegion::new(64 * 64);
    let mut w = AuditWriter::init(heap.region(), &standard_segments(2)).unwrap();
    let mut t = 0;
    let mut next = || {
        t += 1;
        t
    };
    w.append(HV, 0, next(), &op(Op::VmStart)).unwrap();
    w.append(HV, 1, next(), &op(Op::VmStart)).unwrap();
    w.append(0, 0, next(), &op(Op::CtlAllow)).unwrap();
    for i in 0..10_000u64 {
        w.append(1, 1, next(), &entry(i)).unwrap();
    }
    let r = AuditReader::attach(heap.region()).unwrap();
    let llm = r.segment_stats(r.segment(1, 1).unwrap());
    assert_eq!(llm.write_seq, 10_000);
    assert_eq!(llm.overwritten, 10_000 - llm.capacity);
    let ctl = r.segment_stats(r.segment(0, 0).unwrap());
    assert_eq!((ctl.write_seq, ctl.overwritten), (1, 0));
    let (recs, lost) = all(&r);
    assert_eq!(
        lost, llm.overwritten,
        "the reader sees exactly the records lost"
    );
    let kept = |wr: u16, subj: u16, o: Op| {
        recs.iter()
            .any(|r| (r.writer, r.vm_id, r.entry.op) == (wr, subj, o as u16))
    };
    assert!(kept(HV, 0, Op::VmStart) && kept(HV, 1, Op::VmStart) && kept(0, 0, Op::CtlAllow));
    // The newest listing still ends with the flood, merged by time.
    let mut out = [AuditRecord::default(); 3];
    let l = r.newest(|_| true, &mut out);
    assert_eq!(l.count, 3);
    assert!(out.iter().all(|r| r.writer == 1));
    assert_eq!(out[2].seq, 10_000);
    // And selecting the other writers lists theirs, untouched.
    let mut out = [AuditRecord::default(); 8];
    let l = r.newest(|s| s.writer != 1, &mut out);
    assert_eq!((l.count, l.lost), (3, 0));
    assert_eq!(out[0].entry.op, Op::VmStart as u16);
}

#[test]
fn wrap_overwrites_oldest_and_counts_every_loss() {
    let heap = region(1, 8);
    let mut w = AuditWriter::init(heap.region(), &one()).unwrap();
    for i in 1..=21u64 {
        w.append(1, 1, i, &entry(i)).unwrap();
    }
    assert_eq!(w.stats().overwritten, 13);
    let r = AuditReader::attach(heap.region()).unwrap();
    assert_eq!(r.stats().overwritten, 13);
    let mut out = [AuditRecord::default(); 32];
    let b = r.read(0, 1, &mut out);
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
    assert_eq!(r.read_one(0, 13), None);
    assert_eq!(r.read_one(0, 0), None);
    assert_eq!(r.read_one(0, 22), None);
    assert_eq!(r.read_one(1, 14), None, "no such segment");
    // Reading from the future returns nothing and does not move.
    assert_eq!(r.read(0, 50, &mut out).next_seq, 50);
}

#[test]
fn a_record_rewritten_under_the_reader_is_reported_missing() {
    let heap = region(1, 4);
    let mut w = AuditWriter::init(heap.region(), &one()).unwrap();
    for i in 1..=3u64 {
        w.append(1, 1, i, &entry(i)).unwrap();
    }
    // Record 2's stamp is 0 as while the writer fills the slot.
    let mem = heap.region();
    mem.store(8 + 8 + 8, 0, Ordering::Relaxed);
    let r = AuditReader::attach(heap.region()).unwrap();
    let (recs, lost) = all(&r);
    assert_eq!(recs.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(lost, 1);
    let mut out = [AuditRecord::default(); 4];
    assert_eq!(r.newest(|_| true, &mut out).lost, 1);
}

#[test]
fn invalid_entries_are_refused_counted_and_not_written() {
    let heap = region(1, 4);
    let mut w = AuditWriter::init(heap.region(), &one()).unwrap();
    let mut bad = entry(1);
    bad.op = 0;
    assert_eq!(w.append(1, 1, 0, &bad), Err(AuditError::BadOp(0)));
    bad.op = 99;
    assert_eq!(w.append(1, 1, 0, &bad), Err(AuditError::BadOp(99)));
    let mut bad = entry(1);
    bad.status = 0b1000;
    assert_eq!(w.append(1, 1, 0, &bad), Err(AuditError::BadStatus(8)));
    let r = AuditReader::attach(heap.region()).unwrap();
    assert_eq!(r.stats().invalid, 3);
    assert_eq!(r.stats().write_seq, 0);
    assert_eq!(r.read(0, 0, &mut [AuditRecord::default(); 4]).count, 0);
}

#[test]
fn time_stamps_strictly_increase_so_the_merge_keeps_append_order() {
    let heap = HeapRegion::new(64 * 64);
    let mut w = AuditWriter::init(heap.region(), &standard_segments(2)).unwrap();
    // A clock that stands still or goes back (another core's counter) is bumped.
    for (i, (wr, subj)) in [(0, 0), (HV, 1), (1, 1), (0, 0), (HV, 0)]
        .iter()
        .enumerate()
    {
        w.append(*wr, *subj, 100, &entry(i as u64)).unwrap();
    }
    let r = AuditReader::attach(heap.region()).unwrap();
    let (recs, _) = all(&r);
    let ts: Vec<u64> = recs.iter().map(|r| r.ts_ns).collect();
    assert_eq!(ts, [100, 101, 102, 103, 104]);
    let ops: Vec<u64> = recs.iter().map(|r| r.entry.extra / 7).collect();
    assert_eq!(ops, [0, 1, 2, 3, 4]);
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
    let heap = HeapRegion::new(64 * 64);
    assert!(AuditReader::attach(heap.region()).is_err());
    AuditWriter::init(heap.region(), &standard_segments(2)).unwrap();
    let mem = heap.region();
    assert!(AuditReader::attach(mem).is_ok());
    // Version 1 readers' layout is refused, and so is ours by them (version word).
    mem.store(1, 1, Ordering::Relaxed);
    assert!(matches!(
        AuditReader::attach(mem),
        Err(AuditError::BadRegion(_))
    ));
    mem.store(1, 2, Ordering::Relaxed);
    // Segment count out of range, a segment past the mapping, a gap between segments.
    for (word, v) in [(3, 0), (3, 17), (8 + 2, 1 << 40), (16 + 1, 999)] {
        let old = mem.load(word, Ordering::Relaxed);
        mem.store(word, v, Ordering::Relaxed);
        assert!(
            matches!(AuditReader::attach(mem), Err(AuditError::BadRegion(_))),
            "word {word} = {v}"
        );
        mem.store(word, old, Ordering::Relaxed);
    }
    assert!(AuditReader::attach(mem).is_ok());
    let tiny = HeapRegion::new(64 * 4);
    assert!(AuditWriter::init(tiny.region(), &standard_segments(2)).is_err());
    let twice = [one()[0], one()[0]];
    assert!(AuditWriter::init(heap.region(), &twice).is_err());
    assert!(AuditWriter::init(heap.region(), &[]).is_err());
}

#[test]
fn json_uses_seed_field_names_plus_the_writer() {
    let rec = AuditRecord {
        seq: 7,
        ts_ns: 123,
        vm_id: 1,
        writer: 1,
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
        r#"{"op":3,"prompt_len":26,"tokens":4,"wcet_cycles":25000,"period_ns":0,"ts_ns":123,"status":1,"vm":1,"writer":1,"seq":7,"extra":9}"#
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
    let heap = region(1, 2);
    let mut w = AuditWriter::init(heap.region(), &one()).unwrap();
    let r = AuditReader::attach(heap.region()).unwrap();
    const N: u64 = 200_000;
    let (mut seen, mut lost) = (0u64, 0u64);
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 1..=N {
                w.append(1, 1, i * 11, &entry(i)).unwrap();
            }
        });
        let mut out = [AuditRecord::default(); 2];
        let mut from = 1;
        while from <= N {
            let b = r.read(0, from, &mut out);
            for rec in &out[..b.count] {
                assert_eq!(rec.ts_ns, rec.seq * 11);
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
    let heap = region(1, 8);
    let mut w = AuditWriter::init(heap.region(), &one()).unwrap();
    let r = AuditReader::attach(heap.region()).unwrap();
    let mut out = [AuditRecord::default(); 3];
    assert_eq!(r.newest(|_| true, &mut out).count, 0);
    for i in 1..=12u64 {
        w.append(1, 1, i, &entry(i)).unwrap();
    }
    let l = r.newest(|_| true, &mut out);
    assert_eq!((l.count, l.lost), (3, 0));
    let seqs: Vec<u64> = out.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [10, 11, 12]);
    // Asking for more than the log keeps: the kept records, no loss reported.
    let mut big = [AuditRecord::default(); 20];
    let l = r.newest(|_| true, &mut big);
    assert_eq!((l.count, l.lost, big[0].seq, big[7].seq), (8, 0, 5, 12));
}

/// Who appends: a guest (0 or 1, about itself) or the hypervisor (about 0, 1 or itself).
fn writer() -> impl Strategy<Value = (u16, u16)> {
    prop_oneof![
        Just((0, 0)),
        Just((1, 1)),
        Just((HV, 0)),
        Just((HV, 1)),
        Just((HV, HV))
    ]
}

proptest! {
    /// Random appends by every writer into a small log: each segment keeps exactly the newest
    /// min(capacity, appended) of its own records, whatever the others did; the merged listing
    /// is the append order of what is kept; the loss it reports is exactly what was evicted;
    /// guest appends of hypervisor-only ops are refused and leave nothing.
    #[test]
    fn segments_isolate_writers_and_losses_are_exact(
        ops in proptest::collection::vec((writer(), 1u16..=12, 0u64..1000), 0..400),
        blocks in 6usize..40,
    ) {
        let heap = HeapRegion::new(64 * (6 + blocks));
        let mut w = AuditWriter::init(heap.region(), &standard_segments(2)).unwrap();
        let caps: Vec<u64> = w.segment_stats().map(|s| s.capacity).collect();
        let keys = [(0u16, 0u16), (1, 1), (HV, 0), (HV, 1), (HV, HV)];
        let mut expected: Vec<Vec<AuditRecord>> = vec![Vec::new(); 5];
        let mut order = Vec::new();
        let mut refused = [0u64; 5];
        for (i, ((wr, subj), code, x)) in ops.iter().enumerate() {
            let e = AuditEntry { op: *code, status: STATUS_OK, extra: *x, ..AuditEntry::default() };
            let k = keys.iter().position(|k| *k == (*wr, *subj)).unwrap();
            let ts = i as u64 + 1;
            match w.append(*wr, *subj, ts, &e) {
                Ok(seq) => {
                    prop_assert!(*wr == HV || !e.is_hypervisor_only());
                    expected[k].push(AuditRecord { seq, ts_ns: ts, vm_id: *subj, writer: *wr, entry: e });
                    order.push(ts);
                }
                Err(AuditError::Forbidden(_)) => {
                    prop_assert!(*wr != HV && e.is_hypervisor_only());
                    refused[k] += 1;
                }
                Err(err) => prop_assert!(false, "unexpected {err:?}"),
            }
        }
        let r = AuditReader::attach(heap.region()).unwrap();
        let mut evicted = 0;
        for k in 0..5 {
            let s = r.segment_stats(k);
            let n = expected[k].len() as u64;
            prop_assert_eq!(s.write_seq, n);
            prop_assert_eq!(s.overwritten, n.saturating_sub(caps[k]));
            prop_assert_eq!(s.refused, refused[k]);
            evicted += s.overwritten;
            let mut out = vec![AuditRecord::default(); 64];
            let b = r.read(k, 0, &mut out);
            let keep = (n.min(caps[k])) as usize;
            prop_assert_eq!(&out[..b.count], &expected[k][expected[k].len() - keep..]);
        }
        let (recs, lost) = all(&r);
        prop_assert_eq!(lost, evicted);
        let mut kept: Vec<AuditRecord> = Vec::new();
        for (k, e) in expected.iter().enumerate() {
            kept.extend_from_slice(&e[e.len() - (e.len() as u64).min(caps[k]) as usize..]);
        }
        kept.sort_by_key(|r| r.ts_ns);
        prop_assert_eq!(&recs, &kept);
        let mut out = vec![AuditRecord::default(); 5];
        let l = r.newest(|_| true, &mut out);
        let tail = &kept[kept.len().saturating_sub(5)..];
        prop_assert_eq!(&out[..l.count], tail);
    }

    /// Random header and descriptor words: attach gives an error or a reader whose every read
    /// stays in bounds (no panic).
    #[test]
    fn scribbled_headers_never_panic(words in proptest::collection::vec((0usize..48, any::<u64>()), 1..8)) {
        let heap = HeapRegion::new(64 * 64);
        AuditWriter::init(heap.region(), &standard_segments(2)).unwrap();
        let mem = heap.region();
        for (i, v) in &words {
            mem.store(*i, *v, Ordering::Relaxed);
        }
        if let Ok(r) = AuditReader::attach(mem) {
            let _ = all(&r);
            let mut out = [AuditRecord::default(); 4];
            let _ = r.newest(|_| true, &mut out);
            for k in 0..r.segments().len() {
                let _ = r.read(k, 0, &mut out);
                let _ = r.segment_stats(k);
            }
        }
    }
}
