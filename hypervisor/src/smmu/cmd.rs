//! Command-queue entries (16 bytes each).

/// One command: two little-endian doublewords.
pub type Command = [u64; 2];

/// Opcodes (doubleword 0, bits 7:0).
pub mod op {
    /// Invalidate cached configuration of one stream (its STE).
    pub const CFGI_STE: u64 = 0x03;
    /// Invalidate the cached configuration of a range of streams (`CFGI_ALL` with range 31).
    pub const CFGI_STE_RANGE: u64 = 0x04;
    /// Invalidate the context descriptors of one stream.
    pub const CFGI_CD: u64 = 0x05;
    /// Invalidate the TLB entries of one ASID (non-secure, EL1).
    pub const TLBI_NH_ASID: u64 = 0x11;
    /// Invalidate every non-secure, non-hypervisor TLB entry.
    pub const TLBI_NSNH_ALL: u64 = 0x30;
    /// Completes once every earlier command has taken effect.
    pub const SYNC: u64 = 0x46;
}

/// `CMD_CFGI_STE` for stream `sid` (leaf: only the STE itself).
pub const fn cfgi_ste(sid: u32) -> Command {
    [op::CFGI_STE | (sid as u64) << 32, 1]
}

/// `CMD_CFGI_ALL`: every stream's cached configuration.
pub const fn cfgi_all() -> Command {
    [op::CFGI_STE_RANGE, 31]
}

/// `CMD_CFGI_CD` for substream 0 of stream `sid` (leaf).
pub const fn cfgi_cd(sid: u32) -> Command {
    [op::CFGI_CD | (sid as u64) << 32, 1]
}

/// `CMD_TLBI_NH_ASID` for `asid`.
pub const fn tlbi_nh_asid(asid: u16) -> Command {
    [op::TLBI_NH_ASID | (asid as u64) << 48, 0]
}

/// `CMD_TLBI_NSNH_ALL`.
pub const fn tlbi_nsnh_all() -> Command {
    [op::TLBI_NSNH_ALL, 0]
}

/// `CMD_SYNC` without an interrupt or MSI: completion is seen by polling the consumer index.
pub const fn sync() -> Command {
    [op::SYNC, 0]
}

/// The command-queue error code in `SMMU_CMDQ_CONS` (bits 30:24), if any, by name.
pub fn error_name(cons: u32) -> Option<&'static str> {
    match (cons >> 24) & 0x7F {
        0 => None,
        1 => Some("illegal command"),
        2 => Some("abort while fetching a command"),
        3 => Some("ATC invalidation sync error"),
        _ => Some("unknown command error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(cfgi_ste(0x10), [0x0000_0010_0000_0003, 1]);
        assert_eq!(cfgi_cd(0x08), [0x0000_0008_0000_0005, 1]);
        assert_eq!(cfgi_all(), [0x04, 31]);
        assert_eq!(tlbi_nh_asid(2), [0x0002_0000_0000_0011, 0]);
        assert_eq!(tlbi_nsnh_all(), [0x30, 0]);
        assert_eq!(sync(), [0x46, 0]);
    }

    #[test]
    fn command_errors() {
        assert_eq!(error_name(0x0000_0005), None);
        assert_eq!(error_name(0x0100_0005), Some("illegal command"));
        assert_eq!(
            error_name(0x0200_0000),
            Some("abort while fetching a command")
        );
        assert_eq!(error_name(0x7F00_0000), Some("unknown command error"));
    }
}
