//! Producer/consumer index arithmetic of the SMMU's circular queues.
//!
//! An index register holds the slot in its low `log2size` bits and a wrap bit just above; the
//! queue is empty when producer and consumer are equal, full when the slots are equal and the
//! wrap bits differ. Bit 31 of the event queue's indices is an overflow flag, not part of the
//! index.

/// The arithmetic of one queue of `2^log2size` entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ring {
    log2size: u32,
}

impl Ring {
    /// A queue of `2^log2size` entries (`log2size` at most 19, the SMMU's limit).
    pub const fn new(log2size: u32) -> Ring {
        assert!(log2size <= 19);
        Ring { log2size }
    }

    /// Entries in the queue.
    pub const fn entries(&self) -> usize {
        1 << self.log2size
    }

    /// Its `log2size` (the low bits of the queue base register).
    pub const fn log2size(&self) -> u32 {
        self.log2size
    }

    /// Index and wrap bit of a register value (flags dropped).
    pub const fn pointer(&self, reg: u32) -> u32 {
        reg & ((2 << self.log2size) - 1)
    }

    /// The slot a register value points at.
    pub const fn slot(&self, reg: u32) -> usize {
        (reg & ((1 << self.log2size) - 1)) as usize
    }

    /// The register value one entry further (the wrap bit flips past the last slot).
    pub const fn next(&self, reg: u32) -> u32 {
        self.pointer(self.pointer(reg) + 1)
    }

    /// No entry between consumer and producer.
    pub const fn is_empty(&self, prod: u32, cons: u32) -> bool {
        self.pointer(prod) == self.pointer(cons)
    }

    /// Every slot holds an entry.
    pub const fn is_full(&self, prod: u32, cons: u32) -> bool {
        self.slot(prod) == self.slot(cons) && self.pointer(prod) != self.pointer(cons)
    }

    /// Entries between consumer and producer.
    pub const fn len(&self, prod: u32, cons: u32) -> usize {
        let size = 1u32 << self.log2size;
        ((self.pointer(prod) + 2 * size - self.pointer(cons)) % (2 * size)) as usize
    }
}

/// The event queue's overflow flag (bit 31 of `EVENTQ_PROD`, acknowledged by copying it into
/// `EVENTQ_CONS`).
pub const OVERFLOW: u32 = 1 << 31;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wraps_and_fills() {
        let r = Ring::new(2);
        assert_eq!(r.entries(), 4);
        assert!(r.is_empty(0, 0));
        let mut p = 0;
        for _ in 0..4 {
            assert!(!r.is_full(p, 0));
            p = r.next(p);
        }
        assert_eq!(p, 0b100, "slot 0 with the wrap bit set");
        assert!(r.is_full(p, 0) && !r.is_empty(p, 0));
        assert_eq!(r.len(p, 0), 4);
        assert_eq!(r.next(0b111), 0, "wrap bit flips back");
        assert_eq!(r.slot(0b110 | OVERFLOW), 2);
        assert!(r.is_empty(OVERFLOW | 3, 3));
    }

    proptest! {
        /// Pushing up to the capacity from any consumer position: the length counts the pushes,
        /// "full" only at the capacity, "empty" only at zero.
        #[test]
        fn len_matches_pushes(
            (log2, pushes) in (0u32..8).prop_flat_map(|l| (Just(l), 0usize..=1 << l)),
            start in any::<u32>(),
        ) {
            let r = Ring::new(log2);
            let cap = r.entries();
            let cons = r.pointer(start);
            let mut prod = cons;
            for _ in 0..pushes {
                prop_assert!(!r.is_full(prod, cons));
                prod = r.next(prod);
            }
            prop_assert_eq!(r.len(prod, cons), pushes);
            prop_assert_eq!(r.is_full(prod, cons), pushes == cap);
            prop_assert_eq!(r.is_empty(prod, cons), pushes == 0);
        }
    }
}
