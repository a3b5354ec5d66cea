//! Output formats of the `ring` and `audit` commands and counter arithmetic (pure, host
//! tested; the end-to-end tests match these lines).

use core::fmt::{self, Write};

use shared_ring::audit::{AuditRecord, AuditStats, Listing, VM_HYPERVISOR};
use shared_ring::{ConsumerStats, ProducerStats, RejectCounts, RejectReason};

/// Doorbell counters of one guest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DoorbellStats {
    /// Doorbells this guest rang successfully.
    pub tx: u64,
    /// Doorbell interrupts this guest took.
    pub rx: u64,
    /// Doorbells refused because the peer VM was stopped.
    pub peer_stopped: u64,
    /// Doorbells refused by the hypervisor's rate limit (the message stays in the ring; the
    /// peer drains it on its next doorbell or timer tick).
    pub rate_limited: u64,
    /// Doorbell hypercalls that failed otherwise.
    pub failed: u64,
}

/// Counts of the message kinds `ping` uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PingCounts {
    /// Pings sent (ctl) or received (llm).
    pub pings: u64,
    /// Pongs received (ctl) or sent (llm).
    pub pongs: u64,
}

/// Everything `ring` prints for one guest.
#[derive(Clone, Copy, Debug, Default)]
pub struct RingReport<'a> {
    /// `ctl` or `llm`.
    pub role: &'a str,
    /// Epoch of the region this end uses (`None`: not initialised / attached).
    pub epoch: Option<u64>,
    /// Times this end initialised or attached the region.
    pub attaches: u64,
    /// `ok` or why the header is not valid right now.
    pub header: &'a str,
    /// Name of the ring this guest sends on (`requests (ctl->llm)`).
    pub out_name: &'a str,
    /// Producer counters of that ring (all epochs).
    pub out: ProducerStats,
    /// Messages waiting in this guest for ring space.
    pub queued: u64,
    /// Messages dropped because the wait queue was full (or discarded on re-attach).
    pub dropped: u64,
    /// Name of the ring this guest receives on.
    pub in_name: &'a str,
    /// Consumer counters of that ring (all epochs).
    pub inp: ConsumerStats,
    /// Received messages nobody handles.
    pub unhandled: u64,
    /// Ping/pong counts.
    pub ping: PingCounts,
    /// Whether this guest sends pings (ctl) or answers them (llm).
    pub pinger: bool,
    /// Doorbells.
    pub doorbells: DoorbellStats,
    /// Audit records appended / refused.
    pub audit_ok: u64,
    /// Audit appends that failed.
    pub audit_failed: u64,
}

/// Writes the rejection counts: `rejected 3 (bad_index 1 bad_length 0 ...)`.
pub fn write_rejects(out: &mut dyn Write, r: &RejectCounts) -> fmt::Result {
    write!(out, "rejected {} (", r.total())?;
    for (i, reason) in RejectReason::ALL.iter().enumerate() {
        if i > 0 {
            out.write_char(' ')?;
        }
        write!(out, "{} {}", reason.name(), r.get(*reason))?;
    }
    out.write_char(')')
}

/// The `ring` lines.
pub fn write_ring(out: &mut dyn Write, r: &RingReport<'_>) -> fmt::Result {
    match r.epoch {
        Some(e) => writeln!(
            out,
            "ring: {} end, epoch {e}, attached {} times, header {}",
            r.role, r.attaches, r.header
        )?,
        None => writeln!(
            out,
            "ring: {} end, not attached, header {}",
            r.role, r.header
        )?,
    }
    let p = &r.out;
    writeln!(
        out,
        "  {}: sent {} full {} too_large {} corrupt_tail {} queued {} dropped {}",
        r.out_name, p.sent, p.full, p.too_large, p.corrupt_tail, r.queued, r.dropped
    )?;
    write!(
        out,
        "  {}: received {} unhandled {} ",
        r.in_name, r.inp.received, r.unhandled
    )?;
    write_rejects(out, &r.inp.rejected)?;
    writeln!(out)?;
    if r.pinger {
        writeln!(
            out,
            "  ping: pings sent {} pongs received {}",
            r.ping.pings, r.ping.pongs
        )?;
    } else {
        writeln!(
            out,
            "  ping: pings received {} pongs sent {}",
            r.ping.pings, r.ping.pongs
        )?;
    }
    let d = &r.doorbells;
    writeln!(
        out,
        "  doorbells: tx {} rx {} peer_stopped {} rate_limited {} failed {}",
        d.tx, d.rx, d.peer_stopped, d.rate_limited, d.failed
    )?;
    writeln!(
        out,
        "  audit: appended {} failed {}",
        r.audit_ok, r.audit_failed
    )
}

/// Adds producer counters (totals over several attachments).
pub fn add_producer(a: ProducerStats, b: ProducerStats) -> ProducerStats {
    ProducerStats {
        sent: a.sent.wrapping_add(b.sent),
        full: a.full.wrapping_add(b.full),
        too_large: a.too_large.wrapping_add(b.too_large),
        corrupt_tail: a.corrupt_tail.wrapping_add(b.corrupt_tail),
    }
}

/// Adds consumer counters (totals over several attachments).
pub fn add_consumer(a: ConsumerStats, b: ConsumerStats) -> ConsumerStats {
    let mut rejected = a.rejected;
    for (x, y) in rejected.0.iter_mut().zip(b.rejected.0) {
        *x = x.wrapping_add(y);
    }
    ConsumerStats {
        received: a.received.wrapping_add(b.received),
        rejected,
    }
}

/// Name of VM `id` in audit listings (`hv` for the hypervisor's own records).
pub fn vm_name(id: u16) -> &'static str {
    if id == VM_HYPERVISOR {
        return "hv";
    }
    sis_platform::partition::PARTITIONS
        .get(usize::from(id))
        .map_or("?", |vm| vm.name)
}

/// The VM id of a name in audit listings (`hv` = the hypervisor), the inverse of [`vm_name`].
pub fn vm_id(name: &str) -> Option<u16> {
    if name == "hv" {
        return Some(VM_HYPERVISOR);
    }
    sis_platform::partition::PARTITIONS
        .iter()
        .position(|vm| vm.name == name)
        .map(|i| i as u16)
}

/// The header line of `audit`: the log's counters, then what the listing shows and how many
/// records are missing inside its span (rewritten while it was read).
pub fn write_audit_header(out: &mut dyn Write, st: &AuditStats, shown: &Listing) -> fmt::Result {
    writeln!(
        out,
        "audit: {} records written, capacity {}, overwritten {}, invalid {}, refused {}, showing {}, missing {}",
        st.write_seq, st.capacity, st.overwritten, st.invalid, st.refused, shown.count, shown.lost
    )
}

/// One record of `audit` (the same fields as the monitor's listing).
pub fn write_audit_record(out: &mut dyn Write, r: &AuditRecord) -> fmt::Result {
    writeln!(out, "  {}", shared_ring::audit::Text(r, vm_name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_ring::audit::{AuditEntry, Op};

    #[test]
    fn ring_report_lines() {
        let mut rejected = RejectCounts::default();
        rejected.0[RejectReason::BadSequence as usize] = 3;
        rejected.0[RejectReason::Decode as usize] = 2;
        let r = RingReport {
            role: "ctl",
            epoch: Some(2),
            attaches: 1,
            header: "ok",
            out_name: "requests (ctl->llm)",
            out: ProducerStats {
                sent: 10,
                full: 1,
                ..Default::default()
            },
            in_name: "responses (llm->ctl)",
            inp: ConsumerStats {
                received: 9,
                rejected,
            },
            ping: PingCounts {
                pings: 10,
                pongs: 9,
            },
            pinger: true,
            doorbells: DoorbellStats {
                tx: 10,
                rx: 9,
                ..Default::default()
            },
            audit_ok: 1,
            ..Default::default()
        };
        let mut s = String::new();
        write_ring(&mut s, &r).unwrap();
        assert_eq!(
            s,
            "ring: ctl end, epoch 2, attached 1 times, header ok\n\
             \x20 requests (ctl->llm): sent 10 full 1 too_large 0 corrupt_tail 0 queued 0 dropped 0\n\
             \x20 responses (llm->ctl): received 9 unhandled 0 rejected 5 (bad_index 0 bad_length 0 bad_sequence 3 decode 2 trailing 0)\n\
             \x20 ping: pings sent 10 pongs received 9\n\
             \x20 doorbells: tx 10 rx 9 peer_stopped 0 rate_limited 0 failed 0\n\
             \x20 audit: appended 1 failed 0\n"
        );
        let mut s = String::new();
        write_ring(
            &mut s,
            &RingReport {
                role: "llm",
                header: "bad magic",
                ..r
            },
        )
        .unwrap();
        assert!(s.starts_with("ring: llm end, epoch 2"), "{s}");
        let mut s = String::new();
        write_ring(
            &mut s,
            &RingReport {
                epoch: None,
                pinger: false,
                ..r
            },
        )
        .unwrap();
        assert!(
            s.starts_with("ring: ctl end, not attached, header ok\n"),
            "{s}"
        );
        assert!(
            s.contains("  ping: pings received 10 pongs sent 9\n"),
            "{s}"
        );
    }

    #[test]
    fn totals_add_every_field() {
        let a = ProducerStats {
            sent: 1,
            full: 2,
            too_large: 3,
            corrupt_tail: 4,
        };
        assert_eq!(
            add_producer(a, a),
            ProducerStats {
                sent: 2,
                full: 4,
                too_large: 6,
                corrupt_tail: 8
            }
        );
        let c = ConsumerStats {
            received: u64::MAX,
            rejected: RejectCounts([1, 2, 3, 4, 5]),
        };
        let s = add_consumer(c, c);
        assert_eq!(s.received, u64::MAX - 1);
        assert_eq!(s.rejected.0, [2, 4, 6, 8, 10]);
    }

    #[test]
    fn audit_lines() {
        let r = AuditRecord {
            seq: 5,
            ts_ns: 1234,
            vm_id: 0,
            writer: 0,
            entry: AuditEntry {
                op: Op::RingPing as u16,
                status: 1,
                tokens: 1000,
                extra: 1000,
                ..Default::default()
            },
        };
        let mut s = String::new();
        write_audit_record(&mut s, &r).unwrap();
        assert_eq!(
            s,
            "  #5 by=ctl t=1234ns vm=ctl op=12(ring_ping) status=0b001 prompt_len=0 tokens=1000 wcet=0 period=0 extra=0x3e8\n"
        );
        assert_eq!(vm_name(1), "llm");
        assert_eq!(vm_name(VM_HYPERVISOR), "hv");
        assert_eq!(vm_name(7), "?");
        assert_eq!(vm_id("llm"), Some(1));
        assert_eq!(vm_id("hv"), Some(VM_HYPERVISOR));
        assert_eq!(vm_id("nope"), None);
        let mut s = String::new();
        write_audit_header(
            &mut s,
            &AuditStats {
                capacity: 16378,
                write_seq: 3,
                overwritten: 0,
                invalid: 1,
                refused: 2,
            },
            &Listing { count: 3, lost: 0 },
        )
        .unwrap();
        assert_eq!(
            s,
            "audit: 3 records written, capacity 16378, overwritten 0, invalid 1, refused 2, showing 3, missing 0\n"
        );
    }
}
