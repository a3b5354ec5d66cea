//! The register maps the SIS hypervisor and guests share, each written once: the PL011 UART
//! (which the hypervisor drives and emulates and each guest drives), the GICv3 distributor and
//! redistributors (the same three roles) and CPU interface system registers (both take
//! interrupts through them), and the decoding of exception
//! syndromes (ESR_EL2 for the hypervisor's exits and fault reports, ESR_EL1 for a guest's).
//!
//! Everything is `tock-registers` based and `no_std`. MMIO register blocks are built from
//! [`mmio`] cells, which access a register with one plain load or store: the hypervisor decodes
//! a trapped guest access from its syndrome, which writeback or pair instructions would defeat.
//! Field and offset definitions also compile on the host, where the hypervisor's emulation of
//! these devices is tested.
#![cfg_attr(not(test), no_std)]

pub mod esr;
pub mod gic;
pub mod icc;
pub mod mmio;
pub mod pl011;
