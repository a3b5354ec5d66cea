//! A per-process limit on concurrently running instances. The test machine has few cores, and
//! QEMU instances competing for them make timing-sensitive tests flaky, so by default tests that
//! run in parallel threads take turns.

use crate::error::{Error, Result};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Instances allowed at once when `SIS_E2E_PARALLEL` is not set.
pub const DEFAULT_PARALLEL: usize = 1;

struct Slots {
    in_use: Mutex<usize>,
    freed: Condvar,
}

static SLOTS: Slots = Slots {
    in_use: Mutex::new(0),
    freed: Condvar::new(),
};

fn limit() -> usize {
    std::env::var("SIS_E2E_PARALLEL")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_PARALLEL)
}

/// A held instance slot; released on drop.
#[derive(Debug)]
pub(crate) struct Slot(());

impl Slot {
    /// Waits at most `timeout` for a free slot.
    pub fn acquire(timeout: Duration) -> Result<Slot> {
        let limit = limit();
        let deadline = Instant::now() + timeout;
        let mut used = SLOTS.in_use.lock().unwrap_or_else(|e| e.into_inner());
        while *used >= limit {
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Start(format!(
                    "no instance slot free after {timeout:?} ({used} of {limit} in use; raise \
                     SIS_E2E_PARALLEL or run fewer tests at once)"
                )));
            }
            used = SLOTS
                .freed
                .wait_timeout(used, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *used += 1;
        Ok(Slot(()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut used = SLOTS.in_use.lock().unwrap_or_else(|e| e.into_inner());
        *used -= 1;
        SLOTS.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_released_and_waits_are_bounded() {
        // Only this test touches SLOTS in the unit-test binary.
        let a = Slot::acquire(Duration::from_secs(1)).expect("free");
        if limit() == 1 {
            let e = Slot::acquire(Duration::from_millis(50)).expect_err("taken");
            assert!(e.to_string().contains("no instance slot free"), "{e}");
        }
        let t = std::thread::spawn(|| Slot::acquire(Duration::from_secs(5)).map(drop));
        std::thread::sleep(Duration::from_millis(50));
        drop(a);
        t.join().expect("thread").expect("slot after release");
    }
}
