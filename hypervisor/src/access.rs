//! Width and alignment rules for emulated device registers, shared by the vGIC and the vUART.
//!
//! Each device says which access widths a register offset takes ([`Widths`]); [`check`] refuses
//! a width the register does not take and an access not naturally aligned. A refused access
//! stops the VM that made it with a one-line report (see `arch/mmio.rs`): the hardware would not
//! accept it either, and emulating something it never does would only widen the attack surface.

use core::fmt;

/// A set of access widths (bit `n` = `1 << n` bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Widths(u8);

impl Widths {
    /// 32-bit only: most GIC registers.
    pub const W32: Widths = Widths(1 << 2);
    /// Bytes and words: GIC priority and target bytes.
    pub const W8_32: Widths = Widths((1 << 0) | (1 << 2));
    /// 64-bit, and each 32-bit half: GICD_IROUTER, GICR_TYPER.
    pub const W32_64: Widths = Widths((1 << 2) | (1 << 3));
    /// 8, 16 and 32 bits: the PL011's registers.
    pub const W8_16_32: Widths = Widths((1 << 0) | (1 << 1) | (1 << 2));

    /// Whether `size` bytes is one of the widths.
    pub fn contains(self, size: u64) -> bool {
        matches!(size, 1 | 2 | 4 | 8) && self.0 & (size as u8) != 0
    }
}

/// Why an access was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not naturally aligned.
    Misaligned,
    /// The register does not take this width.
    Width,
    /// No register there (outside the frame, or a vCPU the VM does not have).
    Offset,
}

/// A refused access, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadAccess {
    /// Why.
    pub why: Refusal,
    /// Offset in the device's frame.
    pub offset: u64,
    /// Width in bytes.
    pub size: u64,
    /// A store.
    pub write: bool,
}

impl fmt::Display for BadAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.why {
            Refusal::Misaligned => "misaligned",
            Refusal::Width => "wrong-width",
            Refusal::Offset => "out-of-range",
        };
        let dir = if self.write { "write" } else { "read" };
        write!(
            f,
            "{why} {}-bit {dir} at offset {:#x}",
            self.size * 8,
            self.offset
        )
    }
}

/// Checks `size` bytes at `offset` against the register's `widths` and natural alignment.
pub fn check(offset: u64, size: u64, write: bool, widths: Widths) -> Result<(), BadAccess> {
    let bad = |why| BadAccess {
        why,
        offset,
        size,
        write,
    };
    if !widths.contains(size) {
        return Err(bad(Refusal::Width));
    }
    if !offset.is_multiple_of(size) {
        return Err(bad(Refusal::Misaligned));
    }
    Ok(())
}

/// A refusal for an offset with no register.
pub fn no_register(offset: u64, size: u64, write: bool) -> BadAccess {
    BadAccess {
        why: Refusal::Offset,
        offset,
        size,
        write,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    #[test]
    fn widths_and_alignment() {
        assert!(check(0x400, 4, false, Widths::W32).is_ok());
        assert_eq!(
            check(0x45d, 4, false, Widths::W8_32).unwrap_err().why,
            Refusal::Misaligned
        );
        assert!(check(0x45d, 1, true, Widths::W8_32).is_ok());
        assert_eq!(
            check(0x400, 2, false, Widths::W8_32).unwrap_err().why,
            Refusal::Width
        );
        assert_eq!(
            check(0x6004, 8, false, Widths::W32_64).unwrap_err().why,
            Refusal::Misaligned
        );
        assert!(check(0x6004, 4, false, Widths::W32_64).is_ok());
        assert!(!Widths::W8_16_32.contains(8));
        assert!(!Widths::W8_16_32.contains(3));
        assert!(!Widths::W8_16_32.contains(0));
        assert!(!Widths::W8_16_32.contains(u64::MAX));
        assert_eq!(
            check(0x45d, 4, false, Widths::W8_32)
                .unwrap_err()
                .to_string(),
            "misaligned 32-bit read at offset 0x45d"
        );
    }
}
