//! Ring counters: what each side sent, received, refused and rejected.

/// Why the consumer rejected a slot (or a published head).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The producer's published head was behind the tail or more than a ring ahead of it; the
    /// consumer resynchronised by taking that head as its new tail.
    BadIndex = 0,
    /// A slot's length word was larger than the slot's payload area.
    BadLength = 1,
    /// A slot's sequence number was not its ring position (stale, skipped or forged slot).
    BadSequence = 2,
    /// The payload did not decode as a message.
    Decode = 3,
    /// The payload decoded but left bytes over.
    Trailing = 4,
}

impl RejectReason {
    /// Number of reasons.
    pub const COUNT: usize = 5;
    /// All reasons, in counter order.
    pub const ALL: [RejectReason; Self::COUNT] = [
        RejectReason::BadIndex,
        RejectReason::BadLength,
        RejectReason::BadSequence,
        RejectReason::Decode,
        RejectReason::Trailing,
    ];

    /// Short name for logs and the monitor.
    pub fn name(self) -> &'static str {
        match self {
            RejectReason::BadIndex => "bad_index",
            RejectReason::BadLength => "bad_length",
            RejectReason::BadSequence => "bad_sequence",
            RejectReason::Decode => "decode",
            RejectReason::Trailing => "trailing",
        }
    }
}

/// Rejection counts, one per [`RejectReason`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RejectCounts(pub [u64; RejectReason::COUNT]);

impl RejectCounts {
    /// Count for one reason.
    pub fn get(&self, r: RejectReason) -> u64 {
        self.0[r as usize]
    }

    /// Sum over all reasons.
    pub fn total(&self) -> u64 {
        self.0.iter().fold(0u64, |a, b| a.wrapping_add(*b))
    }

    pub(crate) fn bump(&mut self, r: RejectReason) -> u64 {
        let c = &mut self.0[r as usize];
        *c = c.wrapping_add(1);
        *c
    }
}

/// Producer-side counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProducerStats {
    /// Messages published.
    pub sent: u64,
    /// Sends refused because the ring was full (back-pressure).
    pub full: u64,
    /// Sends refused because the encoded message did not fit a slot.
    pub too_large: u64,
    /// Sends refused because the consumer's published tail was impossible.
    pub corrupt_tail: u64,
}

/// Consumer-side counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    /// Messages accepted.
    pub received: u64,
    /// Slots (or heads) rejected, by reason.
    pub rejected: RejectCounts,
}
