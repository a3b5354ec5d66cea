//! The inbox: every job, from the shell, a background source or the ring, is queued here and
//! admitted by the loop. Callable from any context, interrupt handlers included (no allocation,
//! IRQ-safe lock).

use core::sync::atomic::{AtomicU64, Ordering};

use guest_rt::sync::IrqMutex;

use super::request::{JobRequest, ReplySink, SubmitError};
use super::{Service, INBOX_CAPACITY};

/// A request waiting for admission, and where its outcome goes.
pub(super) struct Pending {
    pub(super) req: JobRequest,
    pub(super) sink: &'static dyn ReplySink,
}

/// Queued requests and the refusals of a full inbox.
pub(super) struct Inbox {
    queue: IrqMutex<heapless::Deque<Pending, INBOX_CAPACITY>>,
    full: AtomicU64,
}

impl Inbox {
    pub(super) const fn new() -> Self {
        Inbox {
            queue: IrqMutex::new(heapless::Deque::new()),
            full: AtomicU64::new(0),
        }
    }

    /// The oldest queued request.
    pub(super) fn pop(&self) -> Option<Pending> {
        self.queue.lock().pop_front()
    }

    /// Requests refused because the inbox was full, since boot.
    pub(super) fn full_count(&self) -> u64 {
        self.full.load(Ordering::Relaxed)
    }
}

impl Service {
    /// Queues a request; the scheduler loop admits it (or reports the refusal to `sink`).
    ///
    /// # Errors
    /// [`SubmitError::InboxFull`] (counted).
    pub fn submit(&self, req: JobRequest, sink: &'static dyn ReplySink) -> Result<(), SubmitError> {
        self.inbox
            .queue
            .lock()
            .push_back(Pending { req, sink })
            .map_err(|_| {
                self.inbox.full.fetch_add(1, Ordering::Relaxed);
                SubmitError::InboxFull
            })
    }

    /// Whether requests wait in the inbox.
    pub fn inbox_pending(&self) -> bool {
        !self.inbox.queue.lock().is_empty()
    }
}
