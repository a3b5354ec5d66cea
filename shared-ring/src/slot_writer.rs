//! Writes a payload straight into a slot's words, as a postcard output flavor.
//!
//! Encoding in place saves a copy through a stack buffer: bytes are packed little-endian into
//! 64-bit words and each full word is stored once. Writing stops with an error at the slot's
//! payload limit, so an oversized message never touches the next slot.

use crate::mem::{Mem, Ordering};
use postcard::ser_flavors::Flavor;

/// A postcard flavor whose output is the slot payload area starting at word `next`.
pub(crate) struct SlotWriter<'m, M> {
    mem: &'m M,
    next: usize,
    acc: u64,
    fill: usize,
    len: usize,
    max: usize,
}

impl<'m, M: Mem> SlotWriter<'m, M> {
    /// A writer for `max` bytes starting at word `first`.
    pub(crate) fn new(mem: &'m M, first: usize, max: usize) -> Self {
        Self {
            mem,
            next: first,
            acc: 0,
            fill: 0,
            len: 0,
            max,
        }
    }

    fn store_acc(&mut self) {
        self.mem.store(self.next, self.acc, Ordering::Relaxed);
        self.next += 1;
        self.acc = 0;
        self.fill = 0;
    }
}

impl<M: Mem> Flavor for SlotWriter<'_, M> {
    /// Number of payload bytes written.
    type Output = usize;

    #[inline]
    fn try_push(&mut self, b: u8) -> postcard::Result<()> {
        if self.len >= self.max {
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.acc |= u64::from(b) << (8 * self.fill);
        self.fill += 1;
        self.len += 1;
        if self.fill == 8 {
            self.store_acc();
        }
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, mut data: &[u8]) -> postcard::Result<()> {
        if data.len() > self.max - self.len {
            return Err(postcard::Error::SerializeBufferFull);
        }
        // Top up a partly filled word byte by byte, then move whole words.
        while self.fill != 0 {
            let Some((&b, rest)) = data.split_first() else {
                return Ok(());
            };
            self.try_push(b)?;
            data = rest;
        }
        let whole = data.len() / 8 * 8;
        self.mem.write_bytes(self.next, &data[..whole]);
        self.next += whole / 8;
        self.len += whole;
        let chunks = &data[whole..];
        for &b in chunks {
            self.try_push(b)?;
        }
        Ok(())
    }

    fn finalize(mut self) -> postcard::Result<usize> {
        if self.fill != 0 {
            self.store_acc();
        }
        Ok(self.len)
    }
}
