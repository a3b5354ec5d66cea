//! Heap-backed regions for host tests and benchmarks (feature `alloc`).

use crate::mem::RawRegion;
use alloc::alloc::{alloc_zeroed, dealloc, Layout};

/// A zeroed, 64-byte aligned heap buffer standing in for a shared-memory region.
///
/// [`HeapRegion::region`] hands out as many [`RawRegion`] views as needed (one per simulated
/// guest); they borrow the buffer, so it outlives them.
#[derive(Debug)]
pub struct HeapRegion {
    ptr: *mut u8,
    layout: Layout,
}

// SAFETY: the buffer is owned by the HeapRegion and only reached through RawRegion views, which
// access it atomically.
unsafe impl Send for HeapRegion {}
// SAFETY: `&HeapRegion` only yields RawRegion views (atomic access only).
unsafe impl Sync for HeapRegion {}

impl HeapRegion {
    /// Allocates a zeroed region of `len` bytes, rounded up to a multiple of 64.
    ///
    /// # Panics
    /// If `len` is zero or the allocation fails.
    pub fn new(len: usize) -> Self {
        let len = len.div_ceil(64) * 64;
        assert!(len > 0, "HeapRegion: zero length");
        let layout = Layout::from_size_align(len, 64).expect("HeapRegion: layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "HeapRegion: allocation failed");
        Self { ptr, layout }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.layout.size()
    }

    /// True if the region is empty (never, by construction).
    pub fn is_empty(&self) -> bool {
        self.layout.size() == 0
    }

    /// A view of the whole buffer.
    pub fn region(&self) -> RawRegion<'_> {
        // SAFETY: the buffer is live, 64-byte aligned and a multiple of 64 bytes long for as
        // long as `self` is borrowed, and no reference to its bytes is ever created.
        unsafe { RawRegion::new(self.ptr, self.layout.size()) }
            .expect("HeapRegion: buffer is aligned by construction")
    }
}

impl Drop for HeapRegion {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `alloc_zeroed` with this same layout and is freed once.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}
