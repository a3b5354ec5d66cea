//! [`Hook`]: a replaceable reference to a `'static` value (an interrupt handler, the tick hook,
//! a secondary core's entry, a job posted to a core), read lock-free from any core and from
//! interrupt handlers. It holds a pointer that only ever comes from a `&'static T`, so what it
//! hands out is always that reference, with its type: no integer round trip, no transmute.
//!
//! A function hook is a `Hook<fn(..)>` given `&(function as fn(..))`, a constant that Rust
//! places in static memory.

use core::marker::PhantomData;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

/// A slot holding nothing or a `&'static T`.
pub struct Hook<T: Sync + 'static> {
    ptr: AtomicPtr<T>,
    /// What the slot hands out (and why it is `Send`/`Sync` exactly when `&'static T` is).
    _holds: PhantomData<&'static T>,
}

impl<T: Sync + 'static> Default for Hook<T> {
    fn default() -> Self {
        Self::new()
    }
}

fn raw<T>(v: Option<&'static T>) -> *mut T {
    v.map_or(ptr::null_mut(), |r| ptr::from_ref(r).cast_mut())
}

impl<T: Sync + 'static> Hook<T> {
    /// An empty slot.
    pub const fn new() -> Self {
        Hook {
            ptr: AtomicPtr::new(ptr::null_mut()),
            _holds: PhantomData,
        }
    }

    fn get_ref(p: *mut T) -> Option<&'static T> {
        // SAFETY: every non-null pointer stored in `ptr` comes from a `&'static T` (`raw`), so it
        // is valid, aligned and immutable for the rest of the program; `T: Sync` lets every core
        // share it. The pointer is never written through.
        unsafe { p.as_ref() }
    }

    /// Installs `v` (or empties the slot with `None`), replacing what was there.
    pub fn set(&self, v: Option<&'static T>) {
        self.ptr.store(raw(v), Ordering::Release);
    }

    /// What the slot holds.
    pub fn get(&self) -> Option<&'static T> {
        Self::get_ref(self.ptr.load(Ordering::Acquire))
    }

    /// Empties the slot and returns what it held.
    pub fn take(&self) -> Option<&'static T> {
        Self::get_ref(self.ptr.swap(ptr::null_mut(), Ordering::SeqCst))
    }

    /// Installs `v` only if the slot is empty; otherwise returns what it holds.
    ///
    /// # Errors
    /// The value already in the slot.
    pub fn set_if_empty(&self, v: &'static T) -> Result<(), &'static T> {
        match self.ptr.compare_exchange(
            ptr::null_mut(),
            raw(Some(v)),
            Ordering::SeqCst,
            Ordering::Acquire,
        ) {
            Ok(_) => Ok(()),
            // The exchange failed, so `held` is not null.
            Err(held) => Err(Self::get_ref(held).unwrap_or(v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    static CALLS: AtomicUsize = AtomicUsize::new(0);

    fn add(n: usize) {
        CALLS.fetch_add(n, Ordering::Relaxed);
    }

    fn twice(n: usize) {
        CALLS.fetch_add(2 * n, Ordering::Relaxed);
    }

    #[test]
    fn holds_a_typed_function() {
        let h: Hook<fn(usize)> = Hook::new();
        assert!(h.get().is_none());
        h.set(Some(&(add as fn(usize))));
        (h.get().unwrap())(3);
        h.set(Some(&(twice as fn(usize))));
        (h.get().unwrap())(3);
        assert_eq!(CALLS.load(Ordering::Relaxed), 9);
        h.set(None);
        assert!(h.get().is_none());
    }

    #[test]
    fn post_and_take_like_a_mailbox() {
        static A: u32 = 1;
        static B: u32 = 2;
        let h: Hook<u32> = Hook::new();
        assert_eq!(h.set_if_empty(&A), Ok(()));
        assert_eq!(h.set_if_empty(&B), Err(&1));
        assert_eq!(h.take(), Some(&1));
        assert_eq!(h.take(), None);
        assert_eq!(h.set_if_empty(&B), Ok(()));
        assert_eq!(h.get(), Some(&2));
    }

    #[test]
    fn every_posted_value_is_taken_once_across_threads() {
        static VALUES: [u64; 4] = [1, 10, 100, 1000];
        static H: Hook<u64> = Hook::new();
        const ROUNDS: usize = 2000;
        let producer = std::thread::spawn(|| {
            for i in 0..ROUNDS {
                let v = &VALUES[i % VALUES.len()];
                while H.set_if_empty(v).is_err() {
                    std::hint::spin_loop();
                }
            }
        });
        let mut sum = 0u64;
        let mut taken = 0;
        while taken < ROUNDS {
            if let Some(v) = H.take() {
                sum += *v;
                taken += 1;
            }
        }
        producer.join().unwrap();
        let expect: u64 = (0..ROUNDS).map(|i| VALUES[i % VALUES.len()]).sum();
        assert_eq!(sum, expect);
    }
}
