//! The SMMUv3 in front of the PCIe host bridge: everything about it that is plain logic (the
//! in-memory structures the SMMU reads, their encodings, the queue arithmetic, the decoding of
//! fault events, the stage-1 tables that confine each device to its VM's RAM). Tested on the
//! host; the register block and the programming sequence are in `arch/smmu.rs`.
//!
//! The model (Arm IHI 0070, as QEMU 7.2 implements it: stage 1 only):
//!
//! - a linear **stream table** with one 64-byte entry ([`ste::Ste`]) per stream ID. A PCI
//!   function's stream ID is its requester ID (`bus << 8 | device << 3 | function`). Functions a
//!   VM owns get an entry that translates while the VM runs and aborts (silently) while it is
//!   stopped; every other entry is invalid, so a transaction with that stream ID is refused and
//!   reported (`C_BAD_STE`);
//! - one **context descriptor** ([`ste::ContextDescriptor`]) per VM with devices: ASID, the
//!   translation controls and the root of its **stage-1 tables** ([`iopt`]), which map the VM's
//!   guest-physical RAM window (device address = the VM's IPA) onto its physical RAM and nothing
//!   else;
//! - the **command queue** ([`cmd`]): configuration and TLB invalidation, then `CMD_SYNC`;
//! - the **event queue** ([`event`]): fault records, raised as an interrupt.

pub mod cmd;
pub mod event;
pub mod iopt;
pub mod queue;
pub mod ste;
