//! The physical PL011: polled transmit, interrupt-driven receive. Only the hypervisor touches
//! it; guests get emulated PL011s (`crate::vuart`).

use sis_platform::layout::phys;
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {u32,
    FR [
        RXFE OFFSET(4) NUMBITS(1) [],
        TXFF OFFSET(5) NUMBITS(1) []
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

/// Enables or disables the receive interrupt (flow control: input waits in the UART while
/// the focused guest's FIFO is full).
pub fn set_rx_irq(on: bool) {
    let r = regs();
    if on {
        r.imsc.modify(INT::RX::SET + INT::RT::SET);
    } else {
        r.imsc.modify(INT::RX::CLEAR + INT::RT::CLEAR);
    }
    r.icr.write(INT::RX::SET + INT::RT::SET);
}
