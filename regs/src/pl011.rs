//! The Arm PrimeCell UART (PL011, TRM r1p5) register map: offsets, fields, the register block
//! and its identification values. The hypervisor drives the physical one and emulates one per
//! VM from these definitions; the guests drive theirs.

use core::mem::offset_of;

use tock_registers::register_structs;

use crate::mmio::Mmio32;

/// Register offsets from the frame base (each register is one 32-bit word).
pub mod offset {
    /// Data.
    pub const DR: u64 = 0x000;
    /// Receive status / error clear.
    pub const RSR: u64 = 0x004;
    /// Flags.
    pub const FR: u64 = 0x018;
    /// IrDA low-power counter.
    pub const ILPR: u64 = 0x020;
    /// Integer baud rate divisor.
    pub const IBRD: u64 = 0x024;
    /// Fractional baud rate divisor.
    pub const FBRD: u64 = 0x028;
    /// Line control.
    pub const LCR_H: u64 = 0x02C;
    /// Control.
    pub const CR: u64 = 0x030;
    /// Interrupt FIFO level select.
    pub const IFLS: u64 = 0x034;
    /// Interrupt mask set/clear.
    pub const IMSC: u64 = 0x038;
    /// Raw interrupt status.
    pub const RIS: u64 = 0x03C;
    /// Masked interrupt status.
    pub const MIS: u64 = 0x040;
    /// Interrupt clear.
    pub const ICR: u64 = 0x044;
    /// DMA control.
    pub const DMACR: u64 = 0x048;
    /// First identification register (PeriphID0).
    pub const PERIPH_ID0: u64 = 0xFE0;
    /// Last identification register (PCellID3).
    pub const CELL_ID3: u64 = 0xFFC;
}

/// Size of the register frame.
pub const FRAME_SIZE: u64 = 0x1000;

/// PeriphID0-3, then PCellID0-3, of a PL011 r1p5.
pub const ID: [u32; 8] = [0x11, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1];

pub use self::fields::*;

// tock-registers gives each register an undocumented `Register` type (and value enums).
#[allow(missing_docs)]
mod fields {
    use tock_registers::register_bitfields;

    register_bitfields! {u32,
        /// Data: the character and its receive error flags.
        pub DR [
            /// The character.
            DATA OFFSET(0) NUMBITS(8) [],
            /// Framing, parity, break and overrun error flags of this character.
            ERRORS OFFSET(8) NUMBITS(4) [],
        ],
        /// Receive status (reading), error clear (writing).
        pub RSR [
            /// Framing error.
            FE OFFSET(0) NUMBITS(1) [],
            /// Parity error.
            PE OFFSET(1) NUMBITS(1) [],
            /// Break error.
            BE OFFSET(2) NUMBITS(1) [],
            /// Overrun error.
            OE OFFSET(3) NUMBITS(1) [],
        ],
        /// Flags.
        pub FR [
            /// Busy transmitting.
            BUSY OFFSET(3) NUMBITS(1) [],
            /// Receive FIFO empty.
            RXFE OFFSET(4) NUMBITS(1) [],
            /// Transmit FIFO full.
            TXFF OFFSET(5) NUMBITS(1) [],
            /// Receive FIFO full.
            RXFF OFFSET(6) NUMBITS(1) [],
            /// Transmit FIFO empty.
            TXFE OFFSET(7) NUMBITS(1) [],
        ],
        /// Integer baud rate divisor.
        pub IBRD [
            /// The divisor's integer part.
            DIVINT OFFSET(0) NUMBITS(16) [],
        ],
        /// Fractional baud rate divisor.
        pub FBRD [
            /// The divisor's fractional part (1/64).
            DIVFRAC OFFSET(0) NUMBITS(6) [],
        ],
        /// Line control.
        pub LCR_H [
            /// Enable the FIFOs.
            FEN OFFSET(4) NUMBITS(1) [],
            /// Word length.
            WLEN OFFSET(5) NUMBITS(2) [
                /// 8 bits.
                EightBit = 3
            ],
        ],
        /// Control.
        pub CR [
            /// UART enable.
            UARTEN OFFSET(0) NUMBITS(1) [],
            /// Transmit enable.
            TXE OFFSET(8) NUMBITS(1) [],
            /// Receive enable.
            RXE OFFSET(9) NUMBITS(1) [],
        ],
        /// Interrupt FIFO level select.
        pub IFLS [
            /// Transmit interrupt level.
            TXIFLSEL OFFSET(0) NUMBITS(3) [
                /// FIFO 1/8 full.
                OneEighth = 0
            ],
            /// Receive interrupt level.
            RXIFLSEL OFFSET(3) NUMBITS(3) [
                /// FIFO 1/8 full.
                OneEighth = 0
            ],
        ],
        /// The interrupt bits of IMSC, RIS, MIS and ICR.
        pub INT [
            /// Receive.
            RX OFFSET(4) NUMBITS(1) [],
            /// Transmit.
            TX OFFSET(5) NUMBITS(1) [],
            /// Receive timeout.
            RT OFFSET(6) NUMBITS(1) [],
            /// Framing error.
            FE OFFSET(7) NUMBITS(1) [],
            /// Parity error.
            PE OFFSET(8) NUMBITS(1) [],
            /// Break error.
            BE OFFSET(9) NUMBITS(1) [],
            /// Overrun error.
            OE OFFSET(10) NUMBITS(1) [],
            /// Every interrupt bit (the modem interrupts in bits 0-3 included).
            ALL OFFSET(0) NUMBITS(11) [],
        ],
    }
}

register_structs! {
    /// The PL011's registers.
    pub Regs {
        /// Data.
        (0x000 => pub dr: Mmio32<DR::Register>),
        /// Receive status / error clear.
        (0x004 => pub rsr: Mmio32<RSR::Register>),
        (0x008 => _r0),
        /// Flags.
        (0x018 => pub fr: Mmio32<FR::Register>),
        (0x01C => _r1),
        /// IrDA low-power counter.
        (0x020 => pub ilpr: Mmio32),
        /// Integer baud rate divisor.
        (0x024 => pub ibrd: Mmio32<IBRD::Register>),
        /// Fractional baud rate divisor.
        (0x028 => pub fbrd: Mmio32<FBRD::Register>),
        /// Line control.
        (0x02C => pub lcr_h: Mmio32<LCR_H::Register>),
        /// Control.
        (0x030 => pub cr: Mmio32<CR::Register>),
        /// Interrupt FIFO level select.
        (0x034 => pub ifls: Mmio32<IFLS::Register>),
        /// Interrupt mask set/clear.
        (0x038 => pub imsc: Mmio32<INT::Register>),
        /// Raw interrupt status.
        (0x03C => pub ris: Mmio32<INT::Register>),
        /// Masked interrupt status.
        (0x040 => pub mis: Mmio32<INT::Register>),
        /// Interrupt clear.
        (0x044 => pub icr: Mmio32<INT::Register>),
        /// DMA control.
        (0x048 => pub dmacr: Mmio32),
        (0x04C => _r2),
        /// PeriphID0-3, PCellID0-3.
        (0xFE0 => pub id: [Mmio32; 8]),
        (0x1000 => @END),
    }
}

// The offsets the emulation decodes are the register block's.
const _: () = {
    assert!(offset_of!(Regs, dr) == offset::DR as usize);
    assert!(offset_of!(Regs, rsr) == offset::RSR as usize);
    assert!(offset_of!(Regs, fr) == offset::FR as usize);
    assert!(offset_of!(Regs, ilpr) == offset::ILPR as usize);
    assert!(offset_of!(Regs, ibrd) == offset::IBRD as usize);
    assert!(offset_of!(Regs, fbrd) == offset::FBRD as usize);
    assert!(offset_of!(Regs, lcr_h) == offset::LCR_H as usize);
    assert!(offset_of!(Regs, cr) == offset::CR as usize);
    assert!(offset_of!(Regs, ifls) == offset::IFLS as usize);
    assert!(offset_of!(Regs, imsc) == offset::IMSC as usize);
    assert!(offset_of!(Regs, ris) == offset::RIS as usize);
    assert!(offset_of!(Regs, mis) == offset::MIS as usize);
    assert!(offset_of!(Regs, icr) == offset::ICR as usize);
    assert!(offset_of!(Regs, dmacr) == offset::DMACR as usize);
    assert!(offset_of!(Regs, id) == offset::PERIPH_ID0 as usize);
    assert!(offset::CELL_ID3 == offset::PERIPH_ID0 + 4 * (ID.len() as u64 - 1));
    assert!(core::mem::size_of::<Regs>() == FRAME_SIZE as usize);
};
