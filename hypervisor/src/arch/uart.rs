//! The physical PL011: polled transmit, interrupt-driven receive. Only the hypervisor touches
//! it; guests get emulated PL011s (`hypervisor::vuart`). Register map: `sis_regs::pl011`.

use sis_platform::layout::phys;
use sis_regs::pl011::{Regs, FR, INT, LCR_H};
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};

fn regs() -> &'static Regs {
    // SAFETY: UART_BASE is the PL011's MMIO frame, identity-mapped as device memory for the
    // hypervisor's whole life; `Regs` is the PL011 register layout and holds only MMIO cells.
    unsafe { &*(phys::UART_BASE as *const Regs) }
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
    r.lcr_h.write(LCR_H::FEN::SET + LCR_H::WLEN::EightBit);
    r.imsc.modify(INT::RX::SET + INT::RT::SET);
}

/// Acknowledges the receive-timeout interrupt once the FIFO is drained.
pub fn clear_rx_timeout() {
    regs().icr.write(INT::RT::SET);
}
