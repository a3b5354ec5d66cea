//! Stream table entries and context descriptors (SMMUv3 stage 1, AArch64 tables).

use tock_registers::LocalRegisterCopy;

pub use self::fields::*;

// tock-registers gives each register an undocumented `Register` type (and value enums).
#[allow(missing_docs)]
mod fields {
    use tock_registers::register_bitfields;

    register_bitfields! {u64,
        /// STE doubleword 0.
        pub STE0 [
            /// The entry is valid.
            V OFFSET(0) NUMBITS(1) [],
            /// What happens to the stream's transactions.
            CONFIG OFFSET(1) NUMBITS(3) [
                /// Terminate with an abort; no event is recorded.
                Abort = 0b000,
                /// Stage 1 translates, stage 2 bypassed.
                S1Translate = 0b101
            ],
            /// Context descriptor format: 0 = a single CD at S1ContextPtr.
            S1FMT OFFSET(4) NUMBITS(2) [],
            /// Address bits [51:6] of the context descriptor.
            S1CONTEXTPTR OFFSET(6) NUMBITS(46) [],
            /// Log2 of the number of CDs (0: one).
            S1CDMAX OFFSET(59) NUMBITS(5) []
        ],
        /// STE doubleword 1.
        pub STE1 [
            /// Cacheability of CD fetches, inner (0b01: write-back, read-allocate).
            S1CIR OFFSET(2) NUMBITS(2) [],
            /// Cacheability of CD fetches, outer.
            S1COR OFFSET(4) NUMBITS(2) [],
            /// Shareability of CD fetches (0b11: inner).
            S1CSH OFFSET(6) NUMBITS(2) [],
            /// Stall disable (must stay 0: QEMU's model has no stalls and refuses it).
            S1STALLD OFFSET(27) NUMBITS(1) [],
            /// StreamWorld: 0b00 = non-secure EL1 (ASID-tagged).
            STRW OFFSET(30) NUMBITS(2) [],
            /// Shareability override: 0b01 = use the incoming attribute.
            SHCFG OFFSET(44) NUMBITS(2) []
        ],
        /// CD doubleword 0.
        pub CD0 [
            /// Size offset of the TTB0 region: 64 - T0SZ bits of input address.
            T0SZ OFFSET(0) NUMBITS(6) [],
            /// TTB0 granule: 0b00 = 4 KiB.
            TG0 OFFSET(6) NUMBITS(2) [],
            /// Inner cacheability of table walks (0b01: write-back, read/write-allocate).
            IR0 OFFSET(8) NUMBITS(2) [],
            /// Outer cacheability of table walks.
            OR0 OFFSET(10) NUMBITS(2) [],
            /// Shareability of table walks (0b11: inner).
            SH0 OFFSET(12) NUMBITS(2) [],
            /// TTB0 walks disabled.
            EPD0 OFFSET(14) NUMBITS(1) [],
            /// TTB1 walks disabled (only TTB0 is used).
            EPD1 OFFSET(30) NUMBITS(1) [],
            /// The descriptor is valid.
            V OFFSET(31) NUMBITS(1) [],
            /// Intermediate (output) physical address size: 0b010 = 40 bits.
            IPS OFFSET(32) NUMBITS(3) [],
            /// AArch64 table format.
            AA64 OFFSET(41) NUMBITS(1) [],
            /// Record faults in the event queue.
            R OFFSET(45) NUMBITS(1) [],
            /// Abort faulting transactions (required: QEMU's TERM_MODEL = 1).
            A OFFSET(46) NUMBITS(1) [],
            /// ASID set: 1 = not shared with the CPUs (their broadcast TLBIs do not apply).
            ASET OFFSET(47) NUMBITS(1) [],
            /// Address space ID of the stream's TLB entries.
            ASID OFFSET(48) NUMBITS(16) []
        ]
    }
}

/// Address bits a table or descriptor pointer may have (52-bit, 64-byte or 16-byte aligned).
const PTR_MASK: u64 = 0x000F_FFFF_FFFF_FFC0;

/// One 64-byte stream table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Ste(pub [u64; 8]);

impl Ste {
    /// An invalid entry: transactions are refused and reported (`C_BAD_STE`).
    pub const INVALID: Ste = Ste([0; 8]);

    /// A valid entry that aborts every transaction without recording an event (a stopped
    /// VM's function).
    pub fn abort() -> Ste {
        let mut d0 = LocalRegisterCopy::<u64, STE0::Register>::new(0);
        d0.write(STE0::V::SET + STE0::CONFIG::Abort);
        Ste([d0.get(), 0, 0, 0, 0, 0, 0, 0])
    }

    /// An entry that translates through the single context descriptor at `cd` (64-byte
    /// aligned physical address).
    pub fn translate(cd: u64) -> Ste {
        debug_assert_eq!(cd & !PTR_MASK, 0, "CD address must be 64-byte aligned");
        let mut d0 = LocalRegisterCopy::<u64, STE0::Register>::new(0);
        d0.write(
            STE0::V::SET
                + STE0::CONFIG::S1Translate
                + STE0::S1FMT.val(0)
                + STE0::S1CONTEXTPTR.val((cd & PTR_MASK) >> 6)
                + STE0::S1CDMAX.val(0),
        );
        let mut d1 = LocalRegisterCopy::<u64, STE1::Register>::new(0);
        d1.write(
            STE1::S1CIR.val(0b01)
                + STE1::S1COR.val(0b01)
                + STE1::S1CSH.val(0b11)
                + STE1::STRW.val(0b00)
                + STE1::SHCFG.val(0b01),
        );
        Ste([d0.get(), d1.get(), 0, 0, 0, 0, 0, 0])
    }

    /// Whether the entry is valid.
    pub fn valid(&self) -> bool {
        LocalRegisterCopy::<u64, STE0::Register>::new(self.0[0]).is_set(STE0::V)
    }

    /// Whether the entry translates (rather than aborts or is invalid).
    pub fn translates(&self) -> bool {
        LocalRegisterCopy::<u64, STE0::Register>::new(self.0[0])
            .matches_all(STE0::V::SET + STE0::CONFIG::S1Translate)
    }

    /// The context descriptor address of a translating entry.
    pub fn context(&self) -> u64 {
        LocalRegisterCopy::<u64, STE0::Register>::new(self.0[0]).read(STE0::S1CONTEXTPTR) << 6
    }
}

/// Bits of input address a context descriptor translates: 4 GiB, enough for every IPA a VM
/// has (stage-2 uses the same 32-bit space); anything above is a translation fault.
pub const IOVA_BITS: u64 = crate::stage2::IPA_BITS;

/// MAIR attribute 0 of every CD: Normal memory, inner and outer write-back non-transient,
/// read/write-allocate.
pub const MAIR_NORMAL_WB: u64 = 0xFF;
/// MAIR index the IO page tables use for RAM.
pub const ATTR_NORMAL: u64 = 0;

/// One 64-byte context descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct ContextDescriptor(pub [u64; 8]);

impl ContextDescriptor {
    /// An invalid descriptor.
    pub const INVALID: ContextDescriptor = ContextDescriptor([0; 8]);

    /// A descriptor for ASID `asid` whose TTB0 tables start at `ttb0` (4 KiB aligned): 4 KiB
    /// granule, [`IOVA_BITS`] of input address, write-back inner-shareable walks, faults
    /// recorded and aborted, TTB1 disabled.
    pub fn new(ttb0: u64, asid: u16) -> ContextDescriptor {
        debug_assert_eq!(ttb0 & 0xFFF, 0, "TTB0 must be 4 KiB aligned");
        let mut d0 = LocalRegisterCopy::<u64, CD0::Register>::new(0);
        d0.write(
            CD0::T0SZ.val(64 - IOVA_BITS)
                + CD0::TG0.val(0b00)
                + CD0::IR0.val(0b01)
                + CD0::OR0.val(0b01)
                + CD0::SH0.val(0b11)
                + CD0::EPD1::SET
                + CD0::V::SET
                + CD0::IPS.val(0b010)
                + CD0::AA64::SET
                + CD0::R::SET
                + CD0::A::SET
                + CD0::ASET::SET
                + CD0::ASID.val(u64::from(asid)),
        );
        // Doubleword 1: TTB0[51:4]; doubleword 3: MAIR0.
        ContextDescriptor([
            d0.get(),
            ttb0 & 0x000F_FFFF_FFFF_FFF0,
            0,
            MAIR_NORMAL_WB << (8 * ATTR_NORMAL),
            0,
            0,
            0,
            0,
        ])
    }

    /// Its ASID.
    pub fn asid(&self) -> u16 {
        LocalRegisterCopy::<u64, CD0::Register>::new(self.0[0]).read(CD0::ASID) as u16
    }

    /// Its TTB0.
    pub fn ttb0(&self) -> u64 {
        self.0[1] & 0x000F_FFFF_FFFF_FFF0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_table_entries() {
        assert!(!Ste::INVALID.valid());
        let a = Ste::abort();
        assert!(a.valid() && !a.translates());
        assert_eq!(a.0, [1, 0, 0, 0, 0, 0, 0, 0]);
        let t = Ste::translate(0x4012_3440);
        // V, Config = 0b101 (bits 3:1), the CD pointer in bits 51:6, S1CDMax = 0.
        assert_eq!(t.0[0], 0x4012_3440 | 0b1011);
        // S1CIR = S1COR = write-back, S1CSH = inner, STRW = NS-EL1, SHCFG = incoming.
        assert_eq!(
            t.0[1],
            (0b01 << 2) | (0b01 << 4) | (0b11 << 6) | (0b01 << 44)
        );
        assert!(t.translates());
        assert_eq!(t.context(), 0x4012_3440);
        assert_eq!(t.0[2..], [0; 6]);
    }

    #[test]
    fn context_descriptor_layout() {
        let cd = ContextDescriptor::new(0x4020_5000, 7);
        let d0 = cd.0[0];
        assert_eq!(d0 & 0x3F, 32, "T0SZ: 32-bit input");
        assert_eq!((d0 >> 6) & 3, 0, "4 KiB granule");
        assert_eq!(
            (d0 >> 8) & 0x3F,
            0b11_01_01,
            "write-back inner-shareable walks"
        );
        assert_eq!(d0 & (1 << 14), 0, "TTB0 enabled");
        assert_ne!(d0 & (1 << 30), 0, "TTB1 disabled");
        assert_ne!(d0 & (1 << 31), 0, "valid");
        assert_eq!((d0 >> 32) & 7, 0b010, "40-bit output");
        for (bit, what) in [
            (41, "AArch64"),
            (45, "record faults"),
            (46, "abort"),
            (47, "ASET"),
        ] {
            assert_ne!(d0 & (1 << bit), 0, "{what}");
        }
        for (bit, what) in [(42, "HD"), (43, "HA"), (44, "stall")] {
            assert_eq!(d0 & (1 << bit), 0, "{what}");
        }
        assert_eq!(cd.asid(), 7);
        assert_eq!(cd.ttb0(), 0x4020_5000);
        assert_eq!(cd.0[3] & 0xFF, 0xFF, "MAIR0 attr 0: normal write-back");
    }
}
