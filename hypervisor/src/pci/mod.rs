//! PCI on the root bus, as the hypervisor owns it: enumeration and BAR assignment at boot
//! ([`enumerate`]), and the filtered view of configuration space each VM gets of its own
//! functions ([`view`]). Plain logic over a [`ConfigAccess`], tested on the host against a model
//! of configuration space; the ECAM accesses and the trap are in `arch/pci.rs`.

pub mod enumerate;
pub mod view;

#[cfg(test)]
pub(crate) mod fake;

/// The machine's configuration space, one naturally aligned 32-bit register at a time.
pub trait ConfigAccess {
    /// Reads the register at `offset` (a multiple of 4 below 4096) of function `rid`.
    fn read(&mut self, rid: u32, offset: u16) -> u32;
    /// Writes the register at `offset` of function `rid`.
    fn write(&mut self, rid: u32, offset: u16, value: u32);
}

/// Configuration-space register offsets (type 0 header unless noted).
pub mod reg {
    /// Vendor ID (15:0) and device ID (31:16).
    pub const ID: u16 = 0x00;
    /// Command (15:0) and status (31:16).
    pub const COMMAND: u16 = 0x04;
    /// Revision (7:0) and class code (31:8).
    pub const CLASS: u16 = 0x08;
    /// Cache line, latency, header type (23:16, bit 23 = multi-function), BIST.
    pub const HEADER: u16 = 0x0C;
    /// First base address register.
    pub const BAR0: u16 = 0x10;
    /// Base address registers of a type 0 header.
    pub const BARS: usize = 6;
    /// Type 1 header: primary, secondary, subordinate bus numbers, secondary latency.
    pub const BUS_NUMBERS: u16 = 0x18;
    /// Expansion ROM base address.
    pub const ROM: u16 = 0x30;
    /// Capabilities pointer (7:0).
    pub const CAP_PTR: u16 = 0x34;
    /// Interrupt line (7:0), interrupt pin (15:8).
    pub const INTERRUPT: u16 = 0x3C;
    /// Size of one function's (extended) configuration space.
    pub const SPACE: u16 = 0x1000;
}

/// Command register bits.
pub mod command {
    /// Memory space decode.
    pub const MEMORY: u32 = 1 << 1;
    /// Bus mastering (DMA).
    pub const BUS_MASTER: u32 = 1 << 2;
    /// INTx disable.
    pub const INTX_DISABLE: u32 = 1 << 10;
    /// The bits a VM may change on its own function: decoding, DMA and INTx of its device
    /// (its DMA is confined by the SMMU, its BARs cannot move, its INTx is its own).
    pub const GUEST_WRITABLE: u32 = MEMORY | BUS_MASTER | INTX_DISABLE;
}

/// Status bit: the function has a capability list.
pub const STATUS_CAP_LIST: u32 = 1 << (16 + 4);

/// What a read of an absent function returns.
pub const ABSENT: u32 = u32::MAX;

/// The requester ID of `bus:device.function`.
pub const fn rid(bus: u8, device: u8, function: u8) -> u32 {
    (bus as u32) << 8 | ((device & 0x1F) as u32) << 3 | (function & 7) as u32
}

/// Offset of function `rid`'s configuration space in an ECAM window starting at bus 0.
pub const fn ecam_offset(rid: u32) -> u64 {
    (rid as u64) << 12
}
