//! A lock-free single-producer single-consumer byte ring with a drop counter.
//!
//! Used between the UART receive interrupt (producer) and the shell loop (consumer). A push into
//! a full ring drops the byte and counts it; nothing is ever overwritten.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A ring of `N` bytes (`N` a power of two; all `N` slots are usable).
pub struct ByteRing<const N: usize> {
    buf: UnsafeCell<[u8; N]>,
    /// Total bytes ever pushed (the producer's index).
    head: AtomicUsize,
    /// Total bytes ever popped (the consumer's index).
    tail: AtomicUsize,
    dropped: AtomicU64,
}

// SAFETY: the producer only writes the slot at `head` before publishing it with a release store,
// the consumer only reads slots below `head` (acquire) and releases them by advancing `tail`;
// with one producer and one consumer no slot is accessed by both at once.
unsafe impl<const N: usize> Sync for ByteRing<N> {}

impl<const N: usize> Default for ByteRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> ByteRing<N> {
    const CHECK: () = assert!(N.is_power_of_two(), "ring size must be a power of two");

    /// An empty ring.
    pub const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CHECK;
        ByteRing {
            buf: UnsafeCell::new([0; N]),
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Producer side: appends `b`, or drops and counts it if the ring is full.
    /// Returns whether the byte was stored. Only one producer may call this.
    pub fn push(&self, b: u8) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        if head.wrapping_sub(tail) == N {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        // SAFETY: slot `head % N` is not visible to the consumer until `head` is published below.
        unsafe { (*self.buf.get())[head % N] = b };
        self.head.store(head.wrapping_add(1), Ordering::Release);
        true
    }

    /// Consumer side: takes the oldest byte. Only one consumer may call this.
    pub fn pop(&self) -> Option<u8> {
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Acquire);
        if head == tail {
            return None;
        }
        // SAFETY: slot `tail % N` was published by the producer and is not reused until `tail`
        // advances below.
        let b = unsafe { (*self.buf.get())[tail % N] };
        self.tail.store(tail.wrapping_add(1), Ordering::Release);
        Some(b)
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.head
            .load(Ordering::Acquire)
            .wrapping_sub(self.tail.load(Ordering::Acquire))
    }

    /// Whether no byte is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes dropped because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn fifo_order_and_wraparound() {
        let r = ByteRing::<4>::new();
        for round in 0..10u8 {
            assert!(r.push(round));
            assert!(r.push(round.wrapping_add(100)));
            assert_eq!(r.len(), 2);
            assert_eq!(r.pop(), Some(round));
            assert_eq!(r.pop(), Some(round.wrapping_add(100)));
            assert_eq!(r.pop(), None);
        }
        assert_eq!(r.dropped(), 0);
    }

    #[test]
    fn full_ring_drops_and_counts_without_overwriting() {
        let r = ByteRing::<4>::new();
        for b in 0..4 {
            assert!(r.push(b));
        }
        assert!(!r.push(9));
        assert!(!r.push(10));
        assert_eq!(r.dropped(), 2);
        assert_eq!(
            [r.pop(), r.pop(), r.pop(), r.pop(), r.pop()],
            [Some(0), Some(1), Some(2), Some(3), None]
        );
    }

    #[test]
    fn concurrent_producer_consumer_keeps_every_byte_in_order() {
        use std::sync::Arc;
        let r = Arc::new(ByteRing::<64>::new());
        let p = Arc::clone(&r);
        const COUNT: usize = 200_000;
        let producer = std::thread::spawn(move || {
            let mut sent = 0usize;
            while sent < COUNT {
                if p.push(sent as u8) {
                    sent += 1;
                }
            }
        });
        let mut next = 0usize;
        while next < COUNT {
            if let Some(b) = r.pop() {
                assert_eq!(b, next as u8);
                next += 1;
            }
        }
        producer.join().unwrap();
        assert!(r.is_empty());
    }
}
