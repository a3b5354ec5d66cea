//! The physical PL011: polled transmit, interrupt-driven receive. Only the hypervisor touches
//! it; guests get emulated PL011s (`hypervisor::vuart`).

use sis_platform::layout::phys;
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {u32,
    FR [
        RXFE OFFSET(4) NUMBITS(1) [],
        TXFF OFFSET(5) NUMBITS(1) []
    ],
    LCR_H [
        FEN OFFSET(4) NUMBITS(1) [],
        WLEN OFFSET(5) NUMBITS(2) [ Eight = 0b11 ]
    ],
    INT [
        RX OFFSET(4) NUMBITS(1) [],
        RT OFFSET(6) NUMBITS(1) []
    ]
}

register_structs! {
    Pl011Regs {
        (0x000 => dr: ReadWrite<u32>),
        (0x004 => _r0),
        (0x018 => fr: ReadOnly<u32, FR::Register>),
        (0x01C => _r1),
        (0x02C => lcr_h: ReadWrite<u32, LCR_H::Register>),
        (0x030 => _r3),
        (0x038 => imsc: ReadWrite<u32, INT::Register>),
        (0x03C => _r2),
        (0x044 => icr: WriteOnly<u32, INT::Register>),
        (0x048 => @END),
    }
}

fn regs() -> &'static Pl011Regs {
    // SAFETY: UART_BASE is the PL011's MMIO frame, identity-mapped as device memory; the
    // struct matches the PL011 register layout.
    unsafe { &*(phys::UART_BASE as *const Pl011Regs) }
}

/// Writes one byte, waiting while the transmit FIFO is full.
pub fn put(b: u8) {
    let r = regs();
    while r.fr.is_set(FR::TXFF) {}
    r.dr.set(u32::from(b));
}

/// Reads one byte if the receive FIFO has one.
pub fn get() -> Option<u8> {
    let r = regs();
    if r.fr.is_set(FR::RXFE) {
        None
    } else {
        Some(r.dr.get() as u8)
    }
}

/// Turns on the FIFOs (8N1) and the receive interrupts. Pending status is not cleared: a byte
/// that arrived before this still raises the interrupt (QEMU only signals a new byte once).
pub fn init() {
    let r = regs();
    r.lcr_h.write(LCR_H::FEN::SET + LCR_H::WLEN::Eight);
    r.imsc.modify(INT::RX::SET + INT::RT::SET);
}

/// Acknowledges the receive-timeout interrupt once the FIFO is drained.
pub fn clear_rx_timeout() {
    regs().icr.write(INT::RT::SET);
}
