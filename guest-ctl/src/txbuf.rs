//! Outgoing byte queue of the host channel: whole reply lines in, device-sized chunks out.
//!
//! A line that does not fit entirely is dropped whole (never a partial line on the wire) and
//! counted, so the host sees a missing reply rather than a corrupt one.

/// A fixed-capacity FIFO of bytes.
pub struct TxBuf<const N: usize> {
    buf: [u8; N],
    head: usize,
    len: usize,
    dropped_lines: u64,
    dropped_bytes: u64,
    high_water: usize,
}

impl<const N: usize> Default for TxBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> TxBuf<N> {
    /// An empty queue.
    pub const fn new() -> Self {
        TxBuf {
            buf: [0; N],
            head: 0,
            len: 0,
            dropped_lines: 0,
            dropped_bytes: 0,
            high_water: 0,
        }
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues `line` whole; false (and counted) if it does not fit.
    pub fn push_line(&mut self, line: &[u8]) -> bool {
        if line.len() > N - self.len {
            self.dropped_lines += 1;
            self.dropped_bytes += line.len() as u64;
            return false;
        }
        for &b in line {
            let tail = (self.head + self.len) % N;
            self.buf[tail] = b;
            self.len += 1;
        }
        self.high_water = self.high_water.max(self.len);
        true
    }

    /// Moves up to `out.len()` queued bytes into `out`; returns how many.
    pub fn pop_into(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len);
        for o in out.iter_mut().take(n) {
            *o = self.buf[self.head];
            self.head = (self.head + 1) % N;
        }
        self.len -= n;
        n
    }

    /// Empties the queue (e.g. the host disconnected); returns the bytes discarded.
    pub fn clear(&mut self) -> usize {
        let n = self.len;
        self.head = 0;
        self.len = 0;
        n
    }

    /// (lines dropped, bytes dropped, most bytes ever queued).
    pub fn stats(&self) -> (u64, u64, usize) {
        (self.dropped_lines, self.dropped_bytes, self.high_water)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_across_wrap() {
        let mut q = TxBuf::<8>::new();
        assert!(q.push_line(b"abcde"));
        let mut o = [0u8; 3];
        assert_eq!(q.pop_into(&mut o), 3);
        assert_eq!(&o, b"abc");
        assert!(q.push_line(b"fghij"));
        let mut o = [0u8; 16];
        let n = q.pop_into(&mut o);
        assert_eq!(&o[..n], b"defghij");
        assert!(q.is_empty());
    }

    #[test]
    fn whole_line_dropped_when_full() {
        let mut q = TxBuf::<8>::new();
        assert!(q.push_line(b"12345"));
        assert!(!q.push_line(b"6789"));
        assert_eq!(q.len(), 5);
        assert_eq!(q.stats(), (1, 4, 5));
        assert_eq!(q.clear(), 5);
        assert!(q.push_line(b"12345678"));
    }
}
