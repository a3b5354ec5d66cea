//! The SIS hypervisor's logic that needs no hardware: the console multiplexer and its sanitiser,
//! the emulated GIC and PL011, MMIO access checks, stage-2 and EL2 page tables, the ELF loader,
//! the monitor's parser, trapped-register decisions, PCI enumeration and configuration view, the
//! SMMU's structures, the doorbell rate limit and interrupt routing. Register maps and syndrome
//! decoding it shares with the guests live in `sis-regs`.
//!
//! It builds for the host, where it is unit- and property-tested (`cargo test -p hypervisor`) and
//! where the e2e harness's self-test drives the real console multiplexer, and for the target,
//! where the EL2 binary (`src/main.rs`, hardware edge in `src/arch/`) links it.
#![cfg_attr(not(test), no_std)]

pub mod access;
pub mod console;
pub mod el2map;
pub mod elf;
pub mod monitor;
pub mod pci;
pub mod ratelimit;
pub mod routing;
pub mod smmu;
pub mod stage2;
pub mod systrap;
pub mod vgic;
pub mod vuart;
