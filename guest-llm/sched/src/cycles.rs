//! Exact conversion between timer cycles (`CNTFRQ_EL0` ticks) and nanoseconds.
//!
//! Both directions round up, in 128-bit arithmetic, so no intermediate product can overflow:
//! a WCET in cycles never becomes a budget shorter than the WCET, and a timer programmed from a
//! slice in ns never fires before the slice has elapsed.

use crate::error::SchedError;

/// Nanoseconds per second.
pub const NS_PER_SEC: u64 = 1_000_000_000;

/// Converts `cycles` ticks of a `freq_hz` timer to nanoseconds, rounding up.
///
/// Errors: [`SchedError::ZeroFrequency`] for `freq_hz == 0`, [`SchedError::ConversionOverflow`]
/// when the result does not fit in a `u64`.
pub fn cycles_to_ns(cycles: u64, freq_hz: u64) -> Result<u64, SchedError> {
    scale_ceil(cycles, u128::from(NS_PER_SEC), freq_hz)
}

/// Converts `ns` nanoseconds to ticks of a `freq_hz` timer, rounding up.
///
/// Errors as for [`cycles_to_ns`].
pub fn ns_to_cycles(ns: u64, freq_hz: u64) -> Result<u64, SchedError> {
    if freq_hz == 0 {
        return Err(SchedError::ZeroFrequency);
    }
    let num = u128::from(ns) * u128::from(freq_hz);
    let out = num.div_ceil(u128::from(NS_PER_SEC));
    u64::try_from(out).map_err(|_| SchedError::ConversionOverflow { value: ns, freq_hz })
}

fn scale_ceil(value: u64, mul: u128, freq_hz: u64) -> Result<u64, SchedError> {
    if freq_hz == 0 {
        return Err(SchedError::ZeroFrequency);
    }
    let out = (u128::from(value) * mul).div_ceil(u128::from(freq_hz));
    u64::try_from(out).map_err(|_| SchedError::ConversionOverflow { value, freq_hz })
}

#[cfg(test)]
mod tests {
    use super::*;

    const QEMU_HZ: u64 = 62_500_000;

    #[test]
    fn qemu_frequency_is_16_ns_per_cycle() {
        assert_eq!(cycles_to_ns(25_000, QEMU_HZ), Ok(400_000));
        assert_eq!(cycles_to_ns(1, QEMU_HZ), Ok(16));
        assert_eq!(ns_to_cycles(400_000, QEMU_HZ), Ok(25_000));
    }

    #[test]
    fn rounds_up_both_ways() {
        // 1 cycle at 3 Hz is 333_333_333.3 ns.
        assert_eq!(cycles_to_ns(1, 3), Ok(333_333_334));
        // 1 ns at 62.5 MHz is 0.0625 cycles.
        assert_eq!(ns_to_cycles(1, QEMU_HZ), Ok(1));
        assert_eq!(ns_to_cycles(0, QEMU_HZ), Ok(0));
        assert_eq!(cycles_to_ns(0, QEMU_HZ), Ok(0));
    }

    #[test]
    fn zero_frequency_is_an_error() {
        assert_eq!(cycles_to_ns(5, 0), Err(SchedError::ZeroFrequency));
        assert_eq!(ns_to_cycles(5, 0), Err(SchedError::ZeroFrequency));
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        // u64::MAX cycles at 1 GHz is exactly u64::MAX ns: fits.
        assert_eq!(cycles_to_ns(u64::MAX, NS_PER_SEC), Ok(u64::MAX));
        // At 62.5 MHz every cycle is 16 ns: overflows.
        assert_eq!(
            cycles_to_ns(u64::MAX, QEMU_HZ),
            Err(SchedError::ConversionOverflow {
                value: u64::MAX,
                freq_hz: QEMU_HZ
            })
        );
        // Largest cycle count that still fits at 62.5 MHz.
        let max = u64::MAX / 16;
        assert_eq!(cycles_to_ns(max, QEMU_HZ), Ok(max * 16));
        assert!(cycles_to_ns(max + 1, QEMU_HZ).is_err());
        assert!(ns_to_cycles(u64::MAX, 2 * NS_PER_SEC).is_err());
    }
}
