//! Constant-time comparisons (built on `subtle`): the time taken does not depend on where,
//! or whether, the inputs differ.

use subtle::ConstantTimeEq;

/// `a == b` for two u64 without an early exit.
pub fn ct_eq_u64(a: u64, b: u64) -> bool {
    bool::from(a.ct_eq(&b))
}

/// `a == b` for two byte strings. Lengths are not secret: different lengths compare unequal
/// at once; equal lengths are compared in full.
pub fn ct_eq_bytes(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}
