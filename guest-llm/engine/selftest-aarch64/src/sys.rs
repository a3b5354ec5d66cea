//! The little of Linux an aarch64 `no_std` process needs under qemu-aarch64: a bump allocator,
//! and raw system calls (write, exit, map a file, the monotonic clock).

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};

const HEAP_SIZE: usize = 384 << 20;
struct Heap(UnsafeCell<[u8; HEAP_SIZE]>);
// SAFETY: the bump allocator hands out disjoint ranges via an atomic offset.
unsafe impl Sync for Heap {}
static HEAP: Heap = Heap(UnsafeCell::new([0; HEAP_SIZE]));
static NEXT: AtomicUsize = AtomicUsize::new(0);

struct Bump;
// SAFETY: every allocation is a fresh, aligned, in-bounds range of HEAP; nothing is
// ever reused (dealloc is a no-op), so ranges never overlap.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let base = HEAP.0.get() as usize;
        let mut cur = NEXT.load(Ordering::Relaxed);
        loop {
            let start = (base + cur).next_multiple_of(l.align()) - base;
            let end = start + l.size();
            if end > HEAP_SIZE {
                return core::ptr::null_mut();
            }
            match NEXT.compare_exchange(cur, end, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return (base + start) as *mut u8,
                Err(c) => cur = c,
            }
        }
    }
    unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
}
#[global_allocator]
static ALLOC: Bump = Bump;

pub fn write(s: &str) {
    // SAFETY: Linux `write(1, buf, len)` on a valid buffer.
    unsafe {
        core::arch::asm!("svc 0", in("x8") 64usize, inout("x0") 1usize => _,
            in("x1") s.as_ptr(), in("x2") s.len(), options(nostack));
    }
}

pub fn exit(code: usize) -> ! {
    // SAFETY: Linux `exit_group(code)`; never returns.
    unsafe {
        core::arch::asm!("svc 0", in("x8") 94usize, in("x0") code, options(noreturn, nostack));
    }
}

/// Monotonic time in seconds (Linux `clock_gettime(CLOCK_MONOTONIC)`).
pub fn now() -> f64 {
    let mut ts = [0i64; 2];
    // SAFETY: `ts` is a valid `struct timespec`.
    unsafe {
        core::arch::asm!("svc 0", in("x8") 113usize, inout("x0") 1usize => _,
            in("x1") ts.as_mut_ptr(), options(nostack));
    }
    ts[0] as f64 + ts[1] as f64 * 1e-9
}

/// Maps a whole file read-only (Linux `openat`, `lseek`, `mmap`); None if it cannot.
pub fn map_file(path: &str) -> Option<&'static [u8]> {
    let mut p = alloc::vec::Vec::from(path.as_bytes());
    p.push(0);
    let fd: isize;
    // SAFETY: Linux `openat(AT_FDCWD, path, O_RDONLY)` with a NUL-terminated path.
    unsafe {
        core::arch::asm!("svc 0", in("x8") 56usize, inout("x0") -100isize => fd,
            in("x1") p.as_ptr(), in("x2") 0usize, in("x3") 0usize, options(nostack));
    }
    if fd < 0 {
        return None;
    }
    let len: isize;
    // SAFETY: Linux `lseek(fd, 0, SEEK_END)`: the file's length.
    unsafe {
        core::arch::asm!("svc 0", in("x8") 62usize, inout("x0") fd => len,
            in("x1") 0usize, in("x2") 2usize, options(nostack));
    }
    if len <= 0 {
        return None;
    }
    let addr: isize;
    // SAFETY: Linux `mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0)`: a fresh read-only mapping
    // that nothing else aliases.
    unsafe {
        core::arch::asm!("svc 0", in("x8") 222usize, inout("x0") 0usize => addr,
            in("x1") len, in("x2") 1usize, in("x3") 2usize, in("x4") fd, in("x5") 0usize,
            options(nostack));
    }
    if addr < 0 && addr > -4096 {
        return None;
    }
    // SAFETY: the mapping is `len` readable bytes, never unmapped or written while the process
    // lives (the file is not changed during a benchmark).
    Some(unsafe { core::slice::from_raw_parts(addr as *const u8, len as usize) })
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    write(&alloc::format!("panic: {info}\n"));
    exit(101)
}
