//! Chunking of generated tokens and the small dataflow graph behind `llmgraph`: a producer
//! operator (the inference job, one token per step) groups tokens into chunks and pushes them
//! into a bounded channel; a sink operator, activated after every producer step, pops at most
//! one chunk per activation and prints it. A push into a full channel drops the chunk and
//! counts it (`llm_graph_chunk_drop`); when the job ends, the last partial chunk is flushed and
//! the sink drains the channel. Pure logic, tested on the host.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

/// Makes generated text printable on one console line: `\\`, `\n`, `\r`, `\t` and `\xNN` for
/// other control characters; everything else (non-ASCII included) as is.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = core::fmt::Write::write_fmt(&mut out, format_args!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// A group of consecutive generated tokens.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chunk {
    /// 0-based chunk number within the job.
    pub index: u32,
    /// Token ids.
    pub ids: Vec<u32>,
    /// Their text.
    pub text: String,
}

/// Groups tokens into chunks of `size`.
#[derive(Clone, Debug)]
pub struct Chunker {
    size: usize,
    next_index: u32,
    cur: Chunk,
}

impl Chunker {
    /// A chunker of `size` (at least 1) tokens per chunk.
    pub fn new(size: usize) -> Self {
        Chunker {
            size: size.max(1),
            next_index: 0,
            cur: Chunk::default(),
        }
    }

    /// Adds one token; returns the chunk it completed, if any.
    pub fn push(&mut self, id: u32, text: &str) -> Option<Chunk> {
        self.cur.ids.push(id);
        self.cur.text.push_str(text);
        if self.cur.ids.len() >= self.size {
            return Some(self.take());
        }
        None
    }

    /// The partial chunk, if any tokens are pending.
    pub fn flush(&mut self) -> Option<Chunk> {
        if self.cur.ids.is_empty() {
            None
        } else {
            Some(self.take())
        }
    }

    fn take(&mut self) -> Chunk {
        let mut c = core::mem::take(&mut self.cur);
        c.index = self.next_index;
        self.next_index += 1;
        c
    }
}

/// A bounded FIFO that drops (and counts) what does not fit.
#[derive(Clone, Debug)]
pub struct Channel<T> {
    buf: VecDeque<T>,
    cap: usize,
    /// Items accepted.
    pub sent: u64,
    /// Items dropped because the channel was full.
    pub dropped: u64,
}

impl<T> Channel<T> {
    /// A channel holding at most `cap` (at least 1) items.
    pub fn new(cap: usize) -> Self {
        Channel {
            buf: VecDeque::with_capacity(cap.max(1)),
            cap: cap.max(1),
            sent: 0,
            dropped: 0,
        }
    }

    /// Enqueues `item`; `false` (and counted) when full.
    pub fn push(&mut self, item: T) -> bool {
        if self.buf.len() >= self.cap {
            self.dropped += 1;
            return false;
        }
        self.buf.push_back(item);
        self.sent += 1;
        true
    }

    /// Dequeues the oldest item.
    pub fn pop(&mut self) -> Option<T> {
        self.buf.pop_front()
    }
}

/// Producer -> bounded channel -> sink.
#[derive(Clone, Debug)]
pub struct Graph {
    producer: Chunker,
    channel: Channel<Chunk>,
    /// Chunks the sink emitted.
    pub emitted: u64,
}

impl Graph {
    /// A graph with `chunk` tokens per chunk and a channel of `capacity` chunks.
    pub fn new(chunk: usize, capacity: usize) -> Self {
        Graph {
            producer: Chunker::new(chunk),
            channel: Channel::new(capacity),
            emitted: 0,
        }
    }

    /// Producer activation: one generated token.
    pub fn produce(&mut self, id: u32, text: &str) {
        if let Some(c) = self.producer.push(id, text) {
            self.channel.push(c);
        }
    }

    /// Sink activation: emits at most one chunk.
    pub fn run_sink(&mut self, mut emit: impl FnMut(&Chunk)) {
        if let Some(c) = self.channel.pop() {
            self.emitted += 1;
            emit(&c);
        }
    }

    /// End of the job: flushes the partial chunk and drains the channel into the sink.
    pub fn finish(&mut self, mut emit: impl FnMut(&Chunk)) {
        if let Some(c) = self.producer.flush() {
            self.channel.push(c);
        }
        while let Some(c) = self.channel.pop() {
            self.emitted += 1;
            emit(&c);
        }
    }

    /// Chunks dropped on a full channel.
    pub fn dropped(&self) -> u64 {
        self.channel.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_one_line() {
        assert_eq!(escape_text("a\nb\\c\u{5}\té"), "a\\nb\\\\c\\x05\\té");
        assert_eq!(escape_text("\u{fffd} laz"), "\u{fffd} laz");
    }

    #[test]
    fn chunker_groups_and_flushes_the_tail() {
        let mut c = Chunker::new(2);
        assert_eq!(c.push(1, "a"), None);
        let first = c.push(2, "b").unwrap();
        assert_eq!(
            (first.index, first.ids.as_slice(), first.text.as_str()),
            (0, &[1, 2][..], "ab")
        );
        assert_eq!(c.push(3, "c"), None);
        let tail = c.flush().unwrap();
        assert_eq!((tail.index, tail.ids.as_slice()), (1, &[3][..]));
        assert_eq!(c.flush(), None);
    }

    #[test]
    fn channel_drops_when_full_and_counts() {
        let mut ch = Channel::new(2);
        assert!(ch.push(1));
        assert!(ch.push(2));
        assert!(!ch.push(3));
        assert_eq!((ch.sent, ch.dropped, ch.buf.len()), (2, 1, 2));
        assert_eq!(ch.pop(), Some(1));
        assert!(ch.push(4));
        assert_eq!(ch.pop(), Some(2));
        assert_eq!(ch.pop(), Some(4));
        assert!(ch.pop().is_none());
    }

    #[test]
    fn graph_keeps_up_when_the_sink_runs_every_step() {
        let mut g = Graph::new(2, 1);
        let mut out = Vec::new();
        for i in 0..7 {
            g.produce(i, "x");
            g.run_sink(|c| out.push(c.ids.clone()));
        }
        g.finish(|c| out.push(c.ids.clone()));
        assert_eq!(out, [vec![0, 1], vec![2, 3], vec![4, 5], vec![6]]);
        assert_eq!((g.dropped(), g.emitted, g.channel.sent), (0, 4, 4));
    }

    #[test]
    fn graph_drops_when_the_sink_lags() {
        // One-token chunks into a channel of 2, sink activated only at the end.
        let mut g = Graph::new(1, 2);
        for i in 0..5 {
            g.produce(i, "t");
        }
        let mut out = Vec::new();
        g.finish(|c| out.push(c.index));
        assert_eq!(out, [0, 1]);
        assert_eq!((g.dropped(), g.channel.sent, g.emitted), (3, 2, 2));
    }
}
