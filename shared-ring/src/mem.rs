//! Word access to memory shared with an untrusted peer.
//!
//! Every byte of a shared region is reached through [`Mem`]: 64-bit atomic loads and stores at a
//! word index. Atomics (not plain or volatile accesses) make a peer scribbling on the memory at
//! the same time a well-defined race: the worst it can do is hand us garbage values, which the
//! layers above validate. [`RawRegion`] is the real backend (a base pointer and a length);
//! under `cfg(loom)` a model backend lets loom explore the protocols' interleavings.

pub use core::sync::atomic::Ordering;

/// Word-granular access to a shared region. Implemented by this crate only.
///
/// Indices are in 64-bit words from the start of the region. Implementations panic on an index
/// outside the region; the protocols derive every index from geometry validated at construction,
/// never from a value read from shared memory, so that check cannot fire because of a peer.
pub trait Mem: Clone + sealed::Sealed {
    /// Length of the region in words.
    fn words(&self) -> usize;
    /// Atomically loads word `i`.
    fn load(&self, i: usize, order: Ordering) -> u64;
    /// Atomically stores `v` into word `i`.
    fn store(&self, i: usize, v: u64, order: Ordering);
    /// A memory fence with the given ordering.
    fn fence(&self, order: Ordering);

    /// Copies `src` into whole words from word `i` on (the last word zero-padded). Not atomic
    /// as a whole: the caller publishes the words with a release store afterwards.
    fn write_bytes(&self, i: usize, src: &[u8]) {
        for (k, c) in src.chunks(8).enumerate() {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.store(i + k, u64::from_le_bytes(w), Ordering::Relaxed);
        }
    }

    /// Fills `dst` from the words from word `i` on. Not atomic as a whole: the caller acquired
    /// the words' publication first and validates what it got.
    fn read_bytes(&self, i: usize, dst: &mut [u8]) {
        for (k, c) in dst.chunks_mut(8).enumerate() {
            let w = self.load(i + k, Ordering::Relaxed).to_le_bytes();
            let n = c.len();
            c.copy_from_slice(&w[..n]);
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// Errors from describing a raw region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawRegionError {
    /// The base pointer is null.
    Null,
    /// The base pointer is not 64-byte aligned.
    Misaligned,
    /// The length is not a multiple of 64 bytes.
    BadLength,
}

/// A region of memory shared with a peer, given as a base pointer and a length.
///
/// `Copy`: every guest-side handle keeps its own copy. All access is atomic, so copies may be used
/// from several threads or cores at once.
#[derive(Clone, Copy, Debug)]
pub struct RawRegion<'a> {
    base: *mut u64,
    words: usize,
    _life: core::marker::PhantomData<&'a core::cell::UnsafeCell<u8>>,
}

// SAFETY: a RawRegion only ever touches its memory through atomic operations, so sharing or
// sending it between threads cannot cause a data race; the constructor's contract guarantees the
// memory stays valid for 'a.
unsafe impl Send for RawRegion<'_> {}
// SAFETY: as above; `&RawRegion` allows nothing beyond atomic loads and stores.
unsafe impl Sync for RawRegion<'_> {}

impl<'a> RawRegion<'a> {
    /// Describes the shared region `[base, base + len)`.
    ///
    /// # Errors
    /// A null or not 64-byte aligned base, or a length that is not a multiple of 64.
    ///
    /// # Safety
    /// For all of `'a` the range must be mapped readable memory (normal cacheable memory on
    /// aarch64), writable as well unless the region is only ever read (an
    /// [`AuditReader`](crate::audit::AuditReader) over the read-only audit mapping only loads),
    /// and no Rust reference to any byte of it may exist. Other agents (the peer guest, the hypervisor, other threads) may access it at any
    /// time, but only with atomic or volatile accesses of their own.
    pub unsafe fn new(base: *mut u8, len: usize) -> Result<Self, RawRegionError> {
        if base.is_null() {
            return Err(RawRegionError::Null);
        }
        if !(base as usize).is_multiple_of(64) {
            return Err(RawRegionError::Misaligned);
        }
        if !len.is_multiple_of(64) {
            return Err(RawRegionError::BadLength);
        }
        Ok(Self {
            base: base.cast(),
            words: len / 8,
            _life: core::marker::PhantomData,
        })
    }

    /// Length of the region in bytes.
    pub fn len(&self) -> usize {
        self.words * 8
    }

    /// True if the region is empty.
    pub fn is_empty(&self) -> bool {
        self.words == 0
    }

    #[inline(always)]
    fn word(&self, i: usize) -> &core::sync::atomic::AtomicU64 {
        assert!(i < self.words, "shared-ring: word index out of region");
        // SAFETY: `i` is inside the region (checked above), the base is 64-byte aligned so every
        // word is 8-byte aligned, and the constructor's contract says the memory is valid for 'a
        // and only accessed atomically, which is what AtomicU64::from_ptr requires.
        unsafe { core::sync::atomic::AtomicU64::from_ptr(self.base.add(i)) }
    }
}

impl sealed::Sealed for RawRegion<'_> {}

impl RawRegion<'_> {
    /// Pointer to word `i`, after checking that `n` bytes (rounded up to words) from there are
    /// in the region.
    #[inline(always)]
    fn words_at(&self, i: usize, n: usize) -> *mut u64 {
        let words = n.div_ceil(8);
        assert!(
            i <= self.words && words <= self.words - i,
            "shared-ring: byte range out of region"
        );
        // SAFETY: `i` is at most the region length in words (checked above), so the offset
        // stays inside (or one past the end of) the region's allocation.
        unsafe { self.base.add(i) }
    }
}

impl Mem for RawRegion<'_> {
    #[inline(always)]
    fn words(&self) -> usize {
        self.words
    }
    #[inline(always)]
    fn load(&self, i: usize, order: Ordering) -> u64 {
        self.word(i).load(order)
    }
    #[inline(always)]
    fn store(&self, i: usize, v: u64, order: Ordering) {
        self.word(i).store(v, order)
    }
    #[inline(always)]
    fn fence(&self, order: Ordering) {
        core::sync::atomic::fence(order)
    }

    /// Bulk payload copy with one bounds check and volatile word accesses (never elided,
    /// merged or invented by the compiler). Payload words are only ever written before, and read
    /// after, an acquire/release handoff of the index that covers them.
    #[inline]
    fn write_bytes(&self, i: usize, src: &[u8]) {
        let dst = self.words_at(i, src.len());
        let mut words = src.chunks_exact(8);
        let mut k = 0;
        for c in &mut words {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            // SAFETY: word `i + k` lies in the range words_at checked, which the constructor's
            // contract makes valid for writes; the base is 64-byte aligned so the word is too.
            unsafe { dst.add(k).write_volatile(u64::from_le_bytes(a)) };
            k += 1;
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut a = [0u8; 8];
            a[..rest.len()].copy_from_slice(rest);
            // SAFETY: as above, for the last (padded) word of the checked range.
            unsafe { dst.add(k).write_volatile(u64::from_le_bytes(a)) };
        }
    }

    #[inline]
    fn read_bytes(&self, i: usize, dst: &mut [u8]) {
        let src = self.words_at(i, dst.len());
        let mut words = dst.chunks_exact_mut(8);
        let mut k = 0;
        for c in &mut words {
            // SAFETY: word `i + k` lies in the checked range and is aligned (see write_bytes).
            let w = unsafe { src.add(k).read_volatile() };
            c.copy_from_slice(&w.to_le_bytes());
            k += 1;
        }
        let rest = words.into_remainder();
        if !rest.is_empty() {
            // SAFETY: as above, for the last (padded) word of the checked range.
            let w = unsafe { src.add(k).read_volatile() }.to_le_bytes();
            let n = rest.len();
            rest.copy_from_slice(&w[..n]);
        }
    }
}

/// Loom model of a shared region: a vector of loom atomics.
#[cfg(loom)]
#[derive(Clone, Debug)]
pub struct LoomRegion {
    words: loom::sync::Arc<std::vec::Vec<loom::sync::atomic::AtomicU64>>,
}

#[cfg(loom)]
impl LoomRegion {
    /// A zeroed model region of `len` bytes (a multiple of 8).
    pub fn new(len: usize) -> Self {
        let v: std::vec::Vec<_> = (0..len / 8)
            .map(|_| loom::sync::atomic::AtomicU64::new(0))
            .collect();
        Self {
            words: loom::sync::Arc::new(v),
        }
    }
}

#[cfg(loom)]
impl sealed::Sealed for LoomRegion {}

#[cfg(loom)]
impl Mem for LoomRegion {
    fn words(&self) -> usize {
        self.words.len()
    }
    fn load(&self, i: usize, order: Ordering) -> u64 {
        self.words[i].load(order)
    }
    fn store(&self, i: usize, v: u64, order: Ordering) {
        self.words[i].store(v, order)
    }
    fn fence(&self, order: Ordering) {
        loom::sync::atomic::fence(order)
    }
}
