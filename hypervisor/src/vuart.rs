//! An emulated PL011 UART, one per VM: enough of the register set for a polled and an
//! interrupt-driven driver. Transmitted bytes go to the console multiplexer; received bytes come
//! from it. The interrupt is level-style: [`VUart::irq_level`] is `RIS & IMSC != 0`.

use sis_regs::pl011::{offset as reg, FBRD, IBRD, ID as ID_REGS, RSR};

use crate::access::{check, no_register, BadAccess, Refusal, Widths};

pub use sis_regs::pl011::FRAME_SIZE;

/// Flag register bits the emulation reports (from the shared PL011 map).
mod fr {
    use sis_regs::pl011::FR;
    pub const RXFE: u32 = FR::RXFE::SET.value;
    pub const RXFF: u32 = FR::RXFF::SET.value;
    pub const TXFE: u32 = FR::TXFE::SET.value;
}

/// Interrupt bits of RIS/MIS/IMSC/ICR the emulation raises (from the shared PL011 map).
mod int {
    use sis_regs::pl011::INT;
    pub const RX: u32 = INT::RX::SET.value;
    pub const TX: u32 = INT::TX::SET.value;
    pub const RT: u32 = INT::RT::SET.value;
    pub const OE: u32 = INT::OE::SET.value;
    pub const ALL: u32 = INT::ALL::SET.value;
}

/// Receive FIFO depth: deeper than a real PL011's 32 entries so a pasted line is not lost while
/// the guest is busy; FR.RXFF still reports a full FIFO, and overflow is counted.
pub const RX_FIFO: usize = 256;

/// Result of a register access the VM made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A read returned this value.
    Read(u32),
    /// A write was absorbed.
    Written,
    /// A write to DR: this byte was transmitted.
    Transmit(u8),
    /// Offset not in the PL011 register map (the VM is stopped for it).
    Bad,
}

/// One emulated PL011.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VUart {
    rx: [u8; RX_FIFO],
    rx_head: usize,
    rx_len: usize,
    imsc: u32,
    /// Latched overrun (cleared by ICR/RSR write).
    overrun: bool,
    cr: u32,
    lcr_h: u32,
    ibrd: u32,
    fbrd: u32,
    ifls: u32,
    /// Bytes dropped because the RX FIFO was full.
    pub rx_dropped: u64,
    /// Bytes received into the FIFO.
    pub rx_bytes: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
}

impl Default for VUart {
    fn default() -> Self {
        Self::new()
    }
}

impl VUart {
    /// A UART in its reset state.
    pub const fn new() -> Self {
        VUart {
            rx: [0; RX_FIFO],
            rx_head: 0,
            rx_len: 0,
            imsc: 0,
            overrun: false,
            cr: 0x300,
            lcr_h: 0,
            ibrd: 0,
            fbrd: 0,
            ifls: 0x12,
            rx_dropped: 0,
            rx_bytes: 0,
            tx_bytes: 0,
        }
    }

    /// Back to the reset state (VM restart); counters are kept.
    pub fn reset(&mut self) {
        let (d, r, t) = (self.rx_dropped, self.rx_bytes, self.tx_bytes);
        *self = VUart::new();
        self.rx_dropped = d;
        self.rx_bytes = r;
        self.tx_bytes = t;
    }

    /// Queues a received byte. Returns false (and counts it) if the FIFO is full.
    pub fn receive(&mut self, b: u8) -> bool {
        if self.rx_len == RX_FIFO {
            self.rx_dropped += 1;
            self.overrun = true;
            return false;
        }
        self.rx[(self.rx_head + self.rx_len) % RX_FIFO] = b;
        self.rx_len += 1;
        self.rx_bytes += 1;
        true
    }

    /// Raw interrupt status.
    fn ris(&self) -> u32 {
        let mut ris = int::TX; // the transmit FIFO is always empty: output is immediate
        if self.rx_len > 0 {
            ris |= int::RX | int::RT;
        }
        if self.overrun {
            ris |= int::OE;
        }
        ris
    }

    /// Whether the UART's interrupt line is asserted.
    pub fn irq_level(&self) -> bool {
        self.ris() & self.imsc != 0
    }

    /// Whether the receive FIFO is full (input should wait).
    pub fn rx_full(&self) -> bool {
        self.rx_len == RX_FIFO
    }

    /// An access the VM made: `size` bytes at `offset`, `value` for a write (zero-extended to
    /// the register). The PL011 registers are at most 16 bits wide, one per word: accesses of
    /// 8, 16 or 32 bits at a register's word offset are taken (8-bit stores to DR and 16-bit
    /// accesses are common in drivers, and QEMU's PL011 takes them); a narrow read returns the
    /// register's low bits. 64-bit accesses, accesses inside a word and offsets with no register
    /// are refused.
    pub fn access(
        &mut self,
        offset: u64,
        size: u64,
        value: Option<u32>,
    ) -> Result<Access, BadAccess> {
        let write = value.is_some();
        if offset >= FRAME_SIZE {
            return Err(no_register(offset, size, write));
        }
        check(offset, size, write, Widths::W8_16_32)?;
        if !offset.is_multiple_of(4) {
            return Err(BadAccess {
                why: Refusal::Misaligned,
                offset,
                size,
                write,
            });
        }
        let done = match value {
            Some(v) => self.write(offset, v),
            None => match self.read(offset) {
                Access::Read(v) => Access::Read(v & (u32::MAX >> (32 - 8 * size))),
                other => other,
            },
        };
        match done {
            Access::Bad => Err(no_register(offset, size, write)),
            ok => Ok(ok),
        }
    }

    /// A 32-bit read at `offset`.
    fn read(&mut self, offset: u64) -> Access {
        let v = match offset {
            reg::DR => {
                if self.rx_len == 0 {
                    0
                } else {
                    let b = self.rx[self.rx_head];
                    self.rx_head = (self.rx_head + 1) % RX_FIFO;
                    self.rx_len -= 1;
                    u32::from(b)
                }
            }
            reg::RSR => {
                if self.overrun {
                    RSR::OE::SET.value
                } else {
                    0
                }
            }
            reg::FR => {
                let mut f = fr::TXFE;
                if self.rx_len == 0 {
                    f |= fr::RXFE;
                }
                if self.rx_len == RX_FIFO {
                    f |= fr::RXFF;
                }
                f
            }
            reg::ILPR => 0,
            reg::IBRD => self.ibrd,
            reg::FBRD => self.fbrd,
            reg::LCR_H => self.lcr_h,
            reg::CR => self.cr,
            reg::IFLS => self.ifls,
            reg::IMSC => self.imsc,
            reg::RIS => self.ris(),
            reg::MIS => self.ris() & self.imsc,
            // ICR is write-only: reads as zero (as on QEMU's PL011).
            reg::ICR | reg::DMACR => 0,
            reg::PERIPH_ID0..=reg::CELL_ID3 if offset.is_multiple_of(4) => {
                ID_REGS[((offset - reg::PERIPH_ID0) / 4) as usize]
            }
            _ => return Access::Bad,
        };
        Access::Read(v)
    }

    /// A 32-bit write of `value` at `offset`.
    fn write(&mut self, offset: u64, value: u32) -> Access {
        match offset {
            reg::DR => {
                self.tx_bytes += 1;
                return Access::Transmit(value as u8);
            }
            reg::RSR => self.overrun = false,
            reg::FR | reg::RIS | reg::MIS | reg::ILPR | reg::DMACR => {}
            reg::IBRD => self.ibrd = value & IBRD::DIVINT.mask,
            reg::FBRD => self.fbrd = value & FBRD::DIVFRAC.mask,
            reg::LCR_H => self.lcr_h = value & 0xFF,
            reg::CR => self.cr = value & 0xFFFF,
            reg::IFLS => self.ifls = value & 0x3F,
            reg::IMSC => self.imsc = value & int::ALL,
            reg::ICR => {
                if value & int::OE != 0 {
                    self.overrun = false;
                }
            }
            reg::PERIPH_ID0..=reg::CELL_ID3 if offset.is_multiple_of(4) => {}
            _ => return Access::Bad,
        }
        Access::Written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polled_rx_and_tx() {
        let mut u = VUart::new();
        assert_eq!(u.read(reg::FR), Access::Read(fr::TXFE | fr::RXFE));
        assert!(u.receive(b'a'));
        assert!(u.receive(b'b'));
        assert_eq!(u.read(reg::FR), Access::Read(fr::TXFE));
        assert_eq!(u.read(reg::DR), Access::Read(u32::from(b'a')));
        assert_eq!(u.read(reg::DR), Access::Read(u32::from(b'b')));
        assert_eq!(u.read(reg::FR), Access::Read(fr::TXFE | fr::RXFE));
        assert_eq!(u.write(reg::DR, u32::from(b'z')), Access::Transmit(b'z'));
        assert_eq!(u.tx_bytes, 1);
        // Output is immediate: the transmit FIFO never reports full.
        assert_eq!(u.read(reg::FR), Access::Read(fr::TXFE | fr::RXFE));
    }

    #[test]
    fn rx_interrupt_follows_fifo_and_mask() {
        let mut u = VUart::new();
        u.receive(b'x');
        assert!(!u.irq_level(), "masked");
        u.write(reg::IMSC, int::RX | int::RT);
        assert!(u.irq_level());
        assert_eq!(u.read(reg::MIS), Access::Read(int::RX | int::RT));
        u.read(reg::DR);
        assert!(!u.irq_level(), "drained FIFO deasserts");
    }

    #[test]
    fn tx_interrupt_when_enabled() {
        let mut u = VUart::new();
        assert!(!u.irq_level());
        u.write(reg::IMSC, int::TX);
        assert!(u.irq_level());
    }

    #[test]
    fn overflow_is_counted_and_flagged() {
        let mut u = VUart::new();
        for i in 0..RX_FIFO {
            assert!(u.receive(i as u8));
        }
        assert!(u.rx_full());
        assert_eq!(u.read(reg::FR), Access::Read(fr::TXFE | fr::RXFF));
        assert!(!u.receive(0xFF));
        assert_eq!(u.rx_dropped, 1);
        assert_eq!(u.read(reg::RSR), Access::Read(1 << 3));
        u.write(reg::ICR, int::OE);
        assert_eq!(u.read(reg::RSR), Access::Read(0));
        // The FIFO content is intact and in order.
        for i in 0..RX_FIFO {
            assert_eq!(u.read(reg::DR), Access::Read(i as u32));
        }
    }

    #[test]
    fn id_registers_and_bad_offsets() {
        let mut u = VUart::new();
        assert_eq!(u.read(0xFE0), Access::Read(0x11));
        assert_eq!(u.read(0xFFC), Access::Read(0xB1));
        assert_eq!(u.read(0x100), Access::Bad);
        assert_eq!(u.write(0x2, 0), Access::Bad);
        assert_eq!(u.read(0xFE2), Access::Bad);
    }

    #[test]
    fn reset_keeps_counters() {
        let mut u = VUart::new();
        u.receive(1);
        u.write(reg::IMSC, int::RX);
        u.reset();
        assert_eq!(u.rx_bytes, 1);
        assert!(!u.irq_level());
        assert_eq!(u.read(reg::FR), Access::Read(fr::TXFE | fr::RXFE));
    }

    #[test]
    fn widths_and_offsets_are_checked() {
        let mut u = VUart::new();
        u.receive(b'q');
        // 16-bit and 8-bit reads at a register's word offset see its low bits.
        assert_eq!(u.access(reg::FR, 2, None), Ok(Access::Read(fr::TXFE)));
        assert_eq!(u.access(reg::CR, 1, None), Ok(Access::Read(0x00)));
        assert_eq!(u.access(reg::CR, 2, None), Ok(Access::Read(0x300)));
        assert_eq!(
            u.access(reg::DR, 1, None),
            Ok(Access::Read(u32::from(b'q')))
        );
        assert_eq!(
            u.access(reg::DR, 1, Some(u32::from(b'!'))),
            Ok(Access::Transmit(b'!'))
        );
        for (off, size) in [
            (reg::FR, 8),
            (reg::FR + 1, 1),
            (reg::FR + 2, 2),
            (reg::FR + 1, 4),
        ] {
            let e = u.access(off, size, None).unwrap_err();
            assert_ne!(e.why, Refusal::Offset, "{off:#x}/{size}");
        }
        assert_eq!(u.access(0x100, 4, None).unwrap_err().why, Refusal::Offset);
        assert_eq!(u.access(0x1000, 4, None).unwrap_err().why, Refusal::Offset);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4000))]

            /// Any access: no panic; taken exactly at a register's word offset with 8, 16 or 32
            /// bits; a refused one changes nothing; a read returns no more bits than its width.
            #[test]
            fn pl011_accesses_are_checked(
                rx in prop::collection::vec(any::<u8>(), 0..300),
                off in prop_oneof![0u64..0x50, 0xFD0u64..0x1010, 0u64..0x1000, any::<u64>()],
                size in prop_oneof![Just(1u64), Just(2), Just(4), Just(8), any::<u64>()],
                value in prop::option::of(any::<u32>()),
            ) {
                let mut u = VUart::new();
                for b in rx {
                    u.receive(b);
                }
                let before = u.clone();
                let register = off % 4 == 0 && (off <= reg::DMACR || (reg::PERIPH_ID0..=reg::CELL_ID3).contains(&off))
                    && off != 0x8 && off != 0xC && off != 0x10 && off != 0x14 && off != 0x1C;
                let allowed = matches!(size, 1 | 2 | 4) && register;
                match u.access(off, size, value) {
                    Ok(Access::Read(v)) => {
                        prop_assert!(allowed && value.is_none(), "{off:#x}/{size}");
                        prop_assert!(u64::from(v) >> (8 * size) == 0);
                    }
                    Ok(_) => prop_assert!(allowed && value.is_some(), "{off:#x}/{size}"),
                    Err(e) => {
                        prop_assert!(!allowed, "refused {off:#x}/{size}: {e}");
                        prop_assert_eq!(&u, &before);
                    }
                }
            }
        }
    }
}
