//! Event-queue records (32 bytes each): what a fault record says, decoded for the monitor.

use core::fmt;

/// One record: four little-endian doublewords.
pub type Record = [u64; 4];

/// Event types the SMMU records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `F_UUT`: unsupported upstream transaction.
    UnsupportedTransaction,
    /// `C_BAD_STREAMID`: the stream ID is beyond the stream table.
    BadStreamId,
    /// `F_STE_FETCH`: the stream table could not be read.
    SteFetch,
    /// `C_BAD_STE`: the stream's entry is invalid (a device no VM owns).
    BadSte,
    /// `F_STREAM_DISABLED`.
    StreamDisabled,
    /// `F_TRANSL_FORBIDDEN`.
    TranslationForbidden,
    /// `C_BAD_SUBSTREAMID`.
    BadSubstreamId,
    /// `F_CD_FETCH`: the context descriptor could not be read.
    CdFetch,
    /// `C_BAD_CD`: the context descriptor is invalid.
    BadCd,
    /// `F_WALK_EABT`: an external abort during the table walk.
    WalkAbort,
    /// `F_TRANSLATION`: no mapping for the address (outside the VM's RAM).
    Translation,
    /// `F_ADDR_SIZE`: the address is beyond the translated range.
    AddressSize,
    /// `F_ACCESS`: access flag fault.
    Access,
    /// `F_PERMISSION`: the mapping does not allow the access.
    Permission,
    /// `F_TLB_CONFLICT`.
    TlbConflict,
    /// `F_CFG_CONFLICT`.
    ConfigConflict,
    /// `E_PAGE_REQUEST`.
    PageRequest,
    /// A code the specification does not define.
    Unknown(u8),
}

impl Kind {
    /// Decodes an event type code.
    pub fn from_code(code: u8) -> Kind {
        match code {
            0x01 => Kind::UnsupportedTransaction,
            0x02 => Kind::BadStreamId,
            0x03 => Kind::SteFetch,
            0x04 => Kind::BadSte,
            0x06 => Kind::StreamDisabled,
            0x07 => Kind::TranslationForbidden,
            0x08 => Kind::BadSubstreamId,
            0x09 => Kind::CdFetch,
            0x0A => Kind::BadCd,
            0x0B => Kind::WalkAbort,
            0x10 => Kind::Translation,
            0x11 => Kind::AddressSize,
            0x12 => Kind::Access,
            0x13 => Kind::Permission,
            0x20 => Kind::TlbConflict,
            0x21 => Kind::ConfigConflict,
            0x24 => Kind::PageRequest,
            other => Kind::Unknown(other),
        }
    }

    /// Whether the record carries the faulting input address and its direction.
    fn has_address(self) -> bool {
        matches!(
            self,
            Kind::UnsupportedTransaction
                | Kind::TranslationForbidden
                | Kind::WalkAbort
                | Kind::Translation
                | Kind::AddressSize
                | Kind::Access
                | Kind::Permission
        )
    }

    /// Short reason for the monitor.
    pub fn reason(self) -> &'static str {
        match self {
            Kind::UnsupportedTransaction => "unsupported transaction",
            Kind::BadStreamId => "stream ID outside the stream table",
            Kind::SteFetch => "stream table fetch failed",
            Kind::BadSte => "no valid stream table entry (device not assigned)",
            Kind::StreamDisabled => "stream disabled",
            Kind::TranslationForbidden => "translation forbidden",
            Kind::BadSubstreamId => "bad substream ID",
            Kind::CdFetch => "context descriptor fetch failed",
            Kind::BadCd => "invalid context descriptor",
            Kind::WalkAbort => "external abort during the table walk",
            Kind::Translation => "translation fault",
            Kind::AddressSize => "address size fault",
            Kind::Access => "access flag fault",
            Kind::Permission => "permission fault",
            Kind::TlbConflict => "TLB conflict",
            Kind::ConfigConflict => "configuration cache conflict",
            Kind::PageRequest => "page request",
            Kind::Unknown(_) => "unknown event",
        }
    }
}

/// A decoded event record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: Kind,
    /// The stream (PCI requester ID) it happened to.
    pub sid: u32,
    /// The device address of the transaction, when the record has one.
    pub addr: Option<u64>,
    /// Whether the transaction was a read (device reads memory) or a write, when known.
    pub read: Option<bool>,
}

impl Event {
    /// Decodes a record.
    pub fn decode(r: &Record) -> Event {
        let kind = Kind::from_code((r[0] & 0xFF) as u8);
        let sid = (r[0] >> 32) as u32;
        let (addr, read) = if kind.has_address() {
            (Some(r[2]), Some(r[1] & (1 << 35) != 0))
        } else {
            (None, None)
        };
        Event {
            kind,
            sid,
            addr,
            read,
        }
    }
}

/// `bus:device.function` of a requester ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rid(pub u32);

impl fmt::Display for Rid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02x}:{:02x}.{}",
            (self.0 >> 8) & 0xFF,
            (self.0 >> 3) & 0x1F,
            self.0 & 7
        )
    }
}

impl fmt::Display for Event {
    /// `write at IOVA 0x...: translation fault` (the device is named by the caller).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.read, self.addr) {
            (Some(read), Some(a)) => write!(
                f,
                "{} at IOVA {a:#x}, {}",
                if read { "read" } else { "write" },
                self.kind.reason()
            ),
            _ => f.write_str(self.kind.reason()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    #[test]
    fn translation_fault_of_a_device_write() {
        // QEMU's F_TRANSLATION for stream 0x10 writing at 0x67fff000: type in bits 7:0, SID in
        // 63:32, RnW (bit 35) clear, input address in doubleword 2.
        let e = Event::decode(&[0x0000_0010_0000_0010, 0, 0x67ff_f000, 0]);
        assert_eq!(
            e,
            Event {
                kind: Kind::Translation,
                sid: 0x10,
                addr: Some(0x67ff_f000),
                read: Some(false)
            }
        );
        assert_eq!(e.to_string(), "write at IOVA 0x67fff000, translation fault");
        let r = Event::decode(&[0x0000_0008_0000_0013, 1 << 35, 0x4810_0000, 0]);
        assert_eq!(r.to_string(), "read at IOVA 0x48100000, permission fault");
        assert_eq!(Rid(0x10).to_string(), "00:02.0");
        assert_eq!(Rid(0x1ff).to_string(), "01:1f.7");
    }

    #[test]
    fn configuration_errors_have_no_address() {
        let e = Event::decode(&[0x0000_0018_0000_0004, u64::MAX, 0x1234, 0]);
        assert_eq!(
            (e.kind, e.sid, e.addr, e.read),
            (Kind::BadSte, 0x18, None, None)
        );
        assert_eq!(
            e.to_string(),
            "no valid stream table entry (device not assigned)"
        );
        assert_eq!(Event::decode(&[0xEE, 0, 0, 0]).kind, Kind::Unknown(0xEE));
    }
}
