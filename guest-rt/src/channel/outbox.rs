//! Back-pressure for a producer: messages that find the ring full wait here, in order, and go
//! out when slots free up (pure, host tested over a heap region).

use heapless::Deque;
use serde::Serialize;
use shared_ring::{Mem, Producer, SendError};

/// What happened to a message given to [`Outbox::send`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Published with this sequence number.
    Published(u64),
    /// The ring was full (or its consumer tail not yet repaired): queued, sent later in order.
    Queued,
}

/// Why a message was neither published nor queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// It does not fit a ring slot (counted by the ring as `too_large`).
    TooLarge,
    /// Ring and queue are full: dropped and counted.
    QueueFull,
}

/// A queue of up to `N` messages waiting for ring space.
#[derive(Debug)]
pub struct Outbox<T, const N: usize> {
    pending: Deque<T, N>,
    dropped: u64,
}

impl<T, const N: usize> Default for Outbox<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> Outbox<T, N> {
    /// An empty outbox.
    pub const fn new() -> Self {
        Outbox {
            pending: Deque::new(),
            dropped: 0,
        }
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True if nothing waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Messages dropped so far (queue full, or discarded by [`Outbox::discard`]).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Drops every waiting message (e.g. they belong to a ring that was re-initialised) and
    /// counts them as dropped; returns how many.
    pub fn discard(&mut self) -> usize {
        let n = self.pending.len();
        self.pending.clear();
        self.dropped = self.dropped.wrapping_add(n as u64);
        n
    }
}

impl<T: Serialize + Clone, const N: usize> Outbox<T, N> {
    /// Publishes waiting messages, oldest first, until the ring is full; calls `on_sent` for each
    /// one published. Returns how many went out.
    pub fn flush<M: Mem>(&mut self, p: &mut Producer<T, M>, mut on_sent: impl FnMut(&T)) -> usize {
        let mut n = 0;
        while let Some(front) = self.pending.front() {
            match p.send(front) {
                Ok(_) => {
                    on_sent(front);
                    self.pending.pop_front();
                    n += 1;
                }
                Err(SendError::TooLarge) => {
                    // Only encodable messages are queued; never let one block the queue.
                    self.pending.pop_front();
                    self.dropped = self.dropped.wrapping_add(1);
                }
                Err(SendError::Full | SendError::CorruptTail) => break,
            }
        }
        n
    }

    /// Sends `msg` behind any waiting messages: waiting ones are flushed first; if any remain or
    /// the ring is full, `msg` is queued. `on_sent` is called for every message published.
    /// Returns the outcome for `msg` and how many messages were published in all.
    pub fn send<M: Mem>(
        &mut self,
        p: &mut Producer<T, M>,
        msg: &T,
        mut on_sent: impl FnMut(&T),
    ) -> (Result<Sent, Refused>, usize) {
        let mut published = self.flush(p, &mut on_sent);
        if !self.pending.is_empty() {
            return (self.queue(msg), published);
        }
        let r = match p.send(msg) {
            Ok(seq) => {
                on_sent(msg);
                published += 1;
                Ok(Sent::Published(seq))
            }
            Err(SendError::TooLarge) => Err(Refused::TooLarge),
            Err(SendError::Full | SendError::CorruptTail) => self.queue(msg),
        };
        (r, published)
    }

    fn queue(&mut self, msg: &T) -> Result<Sent, Refused> {
        match self.pending.push_back(msg.clone()) {
            Ok(()) => Ok(Sent::Queued),
            Err(_) => {
                self.dropped = self.dropped.wrapping_add(1);
                Err(Refused::QueueFull)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_ring::message::{Bytes, MAX_CHUNK};
    use shared_ring::{attach, init, Geometry, HeapRegion, Response, RingGeometry};

    fn pong(t0: u64) -> Response {
        Response::Pong { t0 }
    }

    #[test]
    fn full_ring_queues_in_order_and_flushes_when_drained() {
        let heap = HeapRegion::new(0x10_0000);
        let mut ctl = init(heap.region(), &Geometry::DEFAULT).unwrap();
        let mut llm = attach(heap.region()).unwrap();
        let cap = llm.responses.capacity();
        let mut out: Outbox<Response, 4> = Outbox::new();
        let mut sent = 0;
        for t in 0..cap {
            let (r, n) = out.send(&mut llm.responses, &pong(t), |_| sent += 1);
            assert_eq!((r, n), (Ok(Sent::Published(t)), 1));
        }
        // Full: the next four wait, the fifth is dropped and counted.
        for t in cap..cap + 4 {
            assert_eq!(
                out.send(&mut llm.responses, &pong(t), |_| sent += 1).0,
                Ok(Sent::Queued)
            );
        }
        assert_eq!(
            out.send(&mut llm.responses, &pong(999_999), |_| sent += 1)
                .0,
            Err(Refused::QueueFull)
        );
        assert_eq!((out.len(), out.dropped(), sent), (4, 1, cap));
        assert_eq!(llm.responses.stats().full, 5);
        // Nothing flushes while the ring is still full.
        assert_eq!(out.flush(&mut llm.responses, |_| sent += 1), 0);
        // The consumer takes three: three queued go out, in order, the fourth still waits.
        for t in 0..3 {
            assert_eq!(ctl.responses.recv().unwrap().msg, pong(t));
        }
        assert_eq!(out.flush(&mut llm.responses, |_| sent += 1), 3);
        assert_eq!(out.len(), 1);
        // A new send waits behind the queued one.
        assert_eq!(
            out.send(&mut llm.responses, &pong(cap + 4), |_| ()).0,
            Ok(Sent::Queued)
        );
        for t in 3..cap + 3 {
            assert_eq!(ctl.responses.recv().unwrap().msg, pong(t));
        }
        assert_eq!(out.flush(&mut llm.responses, |_| ()), 2);
        assert_eq!(ctl.responses.recv().unwrap().msg, pong(cap + 3));
        assert_eq!(ctl.responses.recv().unwrap().msg, pong(cap + 4));
        assert!(ctl.responses.recv().is_none());
        assert!(out.is_empty());
    }

    #[test]
    fn order_is_kept_when_space_appears_between_sends() {
        let heap = HeapRegion::new(0x10_0000);
        let mut ctl = init(heap.region(), &Geometry::DEFAULT).unwrap();
        let mut llm = attach(heap.region()).unwrap();
        let cap = llm.responses.capacity();
        let mut out: Outbox<Response, 8> = Outbox::new();
        for t in 0..cap + 2 {
            assert!(out.send(&mut llm.responses, &pong(t), |_| ()).0.is_ok());
        }
        ctl.responses.recv().unwrap();
        // One slot is free, but two older messages wait: the new one must not overtake them.
        let (r, published) = out.send(&mut llm.responses, &pong(cap + 2), |_| ());
        assert_eq!((r, published), (Ok(Sent::Queued), 1));
        let rest: Vec<u64> = core::iter::from_fn(|| ctl.responses.recv())
            .map(|m| match m.msg {
                Response::Pong { t0 } => t0,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(rest, (1..=cap).collect::<Vec<_>>());
        assert_eq!(out.flush(&mut llm.responses, |_| ()), 2);
        assert_eq!(out.discard(), 0);
    }

    #[test]
    fn too_large_is_refused_not_queued() {
        let heap = HeapRegion::new(0x10_0000);
        // A response ring with 48-byte payloads: a full token chunk cannot fit.
        let g = Geometry {
            requests: Geometry::DEFAULT.requests,
            responses: RingGeometry {
                offset: 0x3_6000,
                capacity: 4,
                slot_size: 64,
            },
        };
        let _ctl = init(heap.region(), &g).unwrap();
        let mut llm = attach(heap.region()).unwrap();
        let mut out: Outbox<Response, 2> = Outbox::new();
        let big = Response::Tokens {
            id: 1,
            n: 1,
            text: Bytes::from_slice(&[b'x'; MAX_CHUNK]).unwrap(),
        };
        assert_eq!(
            out.send(&mut llm.responses, &big, |_| ()),
            (Err(Refused::TooLarge), 0)
        );
        assert!(out.is_empty());
        assert_eq!(llm.responses.stats().too_large, 1);
        // Small messages still flow.
        assert_eq!(
            out.send(&mut llm.responses, &pong(1), |_| ()).0,
            Ok(Sent::Published(0))
        );
    }
}
