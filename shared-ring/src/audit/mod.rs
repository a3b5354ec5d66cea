//! The hypervisor's append-only audit log: record format, writer, reader, JSON rendering.
//!
//! The hypervisor owns the log region (written by it only, mapped read-only into the guests).
//! Guests ask for a record with the `HV_AUDIT_APPEND` hypercall, passing an [`AuditEntry`] packed
//! by [`AuditEntry::to_hypercall_args`]; the hypervisor unpacks and validates it
//! ([`AuditEntry::from_hypercall_args`]) and appends it to the guest's own segment with
//! [`AuditWriter::append`], stamping writer, subject, sequence number and time. Ops that only
//! the hypervisor may record ([`Op::hypervisor_only`]) are refused for guests. The hypervisor's
//! own records name itself as writer and the VM they are about as subject. Anyone holding the
//! region reads records with [`AuditReader`]. Prompt text is never logged, only lengths and
//! counters.

mod json;
mod log;

pub use json::{write_json, write_json_array, Text};
pub use log::{
    standard_segments, AuditReader, AuditStats, AuditWriter, Listing, ReadBatch, SegmentInfo,
    SegmentSpec, SegmentStats, GUEST_WEIGHT, HV_WEIGHT, MAX_SEGMENTS, VERSION,
};

/// Operation codes (1..=4 are the seed's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Op {
    /// Model load.
    Load = 1,
    /// Budget change.
    Budget = 2,
    /// Inference (polled).
    Infer = 3,
    /// Inference (streamed).
    Stream = 4,
    /// Job cancelled.
    Cancel = 5,
    /// A host control-plane frame was allowed.
    CtlAllow = 6,
    /// A host control-plane frame was denied (bad token, malformed, rate-limited).
    CtlDeny = 7,
    /// A consumer's drain pass rejected ring slots (`extra` = how many in that pass; one record
    /// per pass, not per slot).
    RingReject = 8,
    /// A ring was full when a message had to be sent (`extra` = ring sequence number).
    RingFull = 9,
    /// A VM was stopped by a fault (`extra` = fault address or syndrome).
    VmFault = 10,
    /// A VM was (re)started.
    VmStart = 11,
    /// A `ping` run over the ring finished (`tokens` = replies, `extra` = pings requested).
    RingPing = 12,
    /// The SMMU refused a DMA of the VM's device, and the VM was stopped (`extra` = the device
    /// address). Written by the hypervisor only.
    DmaFault = 13,
}

impl Op {
    /// Decodes an op code.
    pub fn from_code(code: u16) -> Option<Op> {
        Some(match code {
            1 => Op::Load,
            2 => Op::Budget,
            3 => Op::Infer,
            4 => Op::Stream,
            5 => Op::Cancel,
            6 => Op::CtlAllow,
            7 => Op::CtlDeny,
            8 => Op::RingReject,
            9 => Op::RingFull,
            10 => Op::VmFault,
            11 => Op::VmStart,
            12 => Op::RingPing,
            13 => Op::DmaFault,
            _ => return None,
        })
    }

    /// Whether only the hypervisor may record this op (a guest's append is refused): events the
    /// hypervisor observes about a VM, which a guest must not be able to forge.
    pub fn hypervisor_only(self) -> bool {
        matches!(self, Op::VmFault | Op::VmStart | Op::DmaFault)
    }

    /// Short name for text listings.
    pub fn name(self) -> &'static str {
        match self {
            Op::Load => "load",
            Op::Budget => "budget",
            Op::Infer => "infer",
            Op::Stream => "stream",
            Op::Cancel => "cancel",
            Op::CtlAllow => "ctl_allow",
            Op::CtlDeny => "ctl_deny",
            Op::RingReject => "ring_reject",
            Op::RingFull => "ring_full",
            Op::VmFault => "vm_fault",
            Op::VmStart => "vm_start",
            Op::RingPing => "ring_ping",
            Op::DmaFault => "dma_fault",
        }
    }
}

/// Status bit: the operation succeeded.
pub const STATUS_OK: u16 = 0b001;
/// Status bit: the operation was rejected.
pub const STATUS_REJECT: u16 = 0b010;
/// Status bit: a deadline was missed.
pub const STATUS_DEADLINE_MISS: u16 = 0b100;
/// All defined status bits.
pub const STATUS_MASK: u16 = 0b111;

/// What a guest (or the hypervisor itself) asks to record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditEntry {
    /// Operation code ([`Op`]).
    pub op: u16,
    /// Status bits (`STATUS_*`).
    pub status: u16,
    /// Prompt length (tokens or bytes, as the op defines); never the text.
    pub prompt_len: u32,
    /// Tokens produced.
    pub tokens: u32,
    /// WCET in cycles.
    pub wcet_cycles: u64,
    /// Period in nanoseconds.
    pub period_ns: u64,
    /// Op-specific value (ring sequence number, job id, fault address...).
    pub extra: u64,
}

/// Why an entry was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditError {
    /// Unknown op code.
    BadOp(u16),
    /// Undefined status bits set.
    BadStatus(u16),
    /// Reserved hypercall bits set.
    Reserved,
    /// The region is too small, misaligned, or its header is invalid.
    BadRegion(&'static str),
    /// A guest used an op reserved to the hypervisor ([`Op::hypervisor_only`]).
    Forbidden(u16),
    /// The log has no segment for this (writer, subject) pair.
    NoSegment,
}

impl AuditEntry {
    /// Checks op code and status bits.
    ///
    /// # Errors
    /// [`AuditError::BadOp`] or [`AuditError::BadStatus`].
    pub fn validate(&self) -> Result<(), AuditError> {
        if Op::from_code(self.op).is_none() {
            return Err(AuditError::BadOp(self.op));
        }
        if self.status & !STATUS_MASK != 0 {
            return Err(AuditError::BadStatus(self.status));
        }
        Ok(())
    }

    /// Whether the entry's op is reserved to the hypervisor.
    pub fn is_hypervisor_only(&self) -> bool {
        Op::from_code(self.op).is_some_and(Op::hypervisor_only)
    }

    /// Packs the entry into the `x1..x5` arguments of `HV_AUDIT_APPEND`:
    /// `x1 = op | status << 16 | prompt_len << 32`, `x2 = tokens`, `x3 = wcet_cycles`,
    /// `x4 = period_ns`, `x5 = extra`.
    pub fn to_hypercall_args(&self) -> [u64; 5] {
        [
            u64::from(self.op) | u64::from(self.status) << 16 | u64::from(self.prompt_len) << 32,
            u64::from(self.tokens),
            self.wcet_cycles,
            self.period_ns,
            self.extra,
        ]
    }

    /// Unpacks and validates hypercall arguments (the inverse of
    /// [`AuditEntry::to_hypercall_args`]).
    ///
    /// # Errors
    /// Bits set in the reserved upper half of `x2`, or an invalid op or status.
    pub fn from_hypercall_args(x: [u64; 5]) -> Result<Self, AuditError> {
        if x[1] >> 32 != 0 {
            return Err(AuditError::Reserved);
        }
        let e = AuditEntry {
            op: x[0] as u16,
            status: (x[0] >> 16) as u16,
            prompt_len: (x[0] >> 32) as u32,
            tokens: x[1] as u32,
            wcet_cycles: x[2],
            period_ns: x[3],
            extra: x[4],
        };
        e.validate()?;
        Ok(e)
    }
}

/// One record as stored: an entry stamped by the hypervisor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditRecord {
    /// Sequence number in its writer's segment (1-based, gap-free as written; gaps a reader sees
    /// are overwritten records).
    pub seq: u64,
    /// Time stamp in nanoseconds since hypervisor boot (strictly increasing over the log).
    pub ts_ns: u64,
    /// The VM the record is about (the subject): the appending guest itself, or the VM a
    /// hypervisor event concerns ([`VM_HYPERVISOR`] for the hypervisor itself).
    pub vm_id: u16,
    /// Who appended it: a VM id, or [`VM_HYPERVISOR`].
    pub writer: u16,
    /// The entry.
    pub entry: AuditEntry,
}

/// VM id the hypervisor uses for its own records.
pub const VM_HYPERVISOR: u16 = u16::MAX;
