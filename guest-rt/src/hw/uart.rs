//! PL011 UART at [`ipa::UART_BASE`]: interrupt-driven receive into a ring, polled transmit.
//!
//! Only DR, FR, IBRD, FBRD, LCR_H, CR, IFLS, IMSC, MIS and ICR are touched (registers the
//! hypervisor's emulated PL011 implements), each with one 32-bit access. Register map:
//! `sis_regs::pl011`.

use core::sync::atomic::{AtomicU64, Ordering};

use sis_platform::layout::{ipa, irq};
use sis_regs::pl011::{Regs, CR, DR, FBRD, FR, IBRD, IFLS, INT, LCR_H};
use tock_registers::interfaces::{Readable, Writeable};

use crate::ring::ByteRing;

/// UART reference clock on QEMU `virt` (24 MHz) and the line rate we program.
const UARTCLK: u32 = 24_000_000;
const BAUD: u32 = 115_200;

/// Received bytes waiting for the shell.
static RX: ByteRing<1024> = ByteRing::new();
/// Characters received with a framing/parity/break/overrun flag (still delivered).
static RX_ERRORS: AtomicU64 = AtomicU64::new(0);

fn regs() -> &'static Regs {
    // SAFETY: UART_BASE is the PL011 page, identity-mapped as device memory for the whole life
    // of the guest; `Regs` only contains interior-mutable MMIO cells.
    unsafe { &*(ipa::UART_BASE as *const Regs) }
}

/// Programs 8N1 at 115200 with FIFOs and unmasks the receive and receive-timeout interrupts.
pub(crate) fn init() {
    let r = regs();
    r.cr.set(0);
    // Divisor = UARTCLK / (16 * BAUD) as 16.6 fixed point.
    let div64 = (UARTCLK * 4).div_ceil(BAUD);
    r.ibrd.write(IBRD::DIVINT.val(div64 >> 6));
    r.fbrd.write(FBRD::DIVFRAC.val(div64 & 0x3f));
    r.lcr_h.write(LCR_H::WLEN::EightBit + LCR_H::FEN::SET);
    r.ifls
        .write(IFLS::RXIFLSEL::OneEighth + IFLS::TXIFLSEL::OneEighth);
    r.icr.write(
        INT::RX::SET + INT::RT::SET + INT::FE::SET + INT::PE::SET + INT::BE::SET + INT::OE::SET,
    );
    r.imsc.write(INT::RX::SET + INT::RT::SET);
    r.cr.write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
}

/// Routes the UART interrupt to this core and installs the receive handler.
pub(crate) fn enable_irq(core: usize) {
    super::irq::register(irq::UART, &(on_irq as super::irq::Handler));
    super::gic::enable_spi(irq::UART, core);
}

/// Sends one byte, waiting while the transmit FIFO is full.
pub fn put_byte(b: u8) {
    let r = regs();
    while r.fr.is_set(FR::TXFF) {
        core::hint::spin_loop();
    }
    r.dr.write(DR::DATA.val(b as u32));
}

/// Takes the oldest received byte.
pub fn get_byte() -> Option<u8> {
    RX.pop()
}

/// Whether received bytes are waiting.
pub fn has_input() -> bool {
    !RX.is_empty()
}

/// (bytes dropped because the receive ring was full, characters received with an error flag).
pub fn rx_stats() -> (u64, u64) {
    (RX.dropped(), RX_ERRORS.load(Ordering::Relaxed))
}

/// Receive interrupt: acknowledge first, then drain the FIFO into the ring. In this order a
/// character that arrives during the drain either gets drained now or raises the interrupt
/// again; acknowledging after the drain could clear the interrupt of a character still sitting
/// in the FIFO, which would then wait for the next keystroke.
fn on_irq(_intid: u32) {
    let r = regs();
    let pending = r.mis.extract();
    r.icr
        .set(pending.get() | (INT::RX::SET + INT::RT::SET).value);
    while !r.fr.is_set(FR::RXFE) {
        let dr = r.dr.extract();
        if dr.read(DR::ERRORS) != 0 {
            RX_ERRORS.fetch_add(1, Ordering::Relaxed);
        }
        // A full ring counts the drop itself.
        RX.push(dr.read(DR::DATA) as u8);
    }
}
