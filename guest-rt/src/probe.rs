//! Trap-surface probes (pure logic): what `mmioprobe` accesses, and how the EL1 state a core
//! found at entry is judged by `bootregs`.
//!
//! These commands exist to attack the hypervisor from inside a guest: `mmioprobe` makes one load
//! or store of any width at any offset of an emulated device (the hypervisor must check it and
//! stop the guest when the hardware would not accept it), `sysprobe` touches registers the
//! hypervisor traps, and `bootregs` shows whether anything of a previous run survived a restart.

use sis_platform::layout::ipa;

/// An emulated device frame a probe can target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// GIC distributor.
    Gicd,
    /// The first redistributor's RD_base frame.
    GicrRd,
    /// The first redistributor's SGI_base frame.
    GicrSgi,
    /// The PL011.
    Uart,
    /// The PCI configuration view (ECAM layout; only a VM that owns PCI functions has one).
    PciCfg,
}

/// Offset of a redistributor's SGI_base frame from its RD_base (GICv3).
const GICR_SGI_FRAME: u64 = 0x1_0000;

impl Device {
    /// Every device, in the order the usage text names them.
    pub const ALL: [Device; 5] = [
        Device::Gicd,
        Device::GicrRd,
        Device::GicrSgi,
        Device::Uart,
        Device::PciCfg,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Device::Gicd => "gicd",
            Device::GicrRd => "gicr",
            Device::GicrSgi => "gicr-sgi",
            Device::Uart => "uart",
            Device::PciCfg => "pcicfg",
        }
    }

    /// Parses a name from [`Device::name`].
    pub fn parse(s: &str) -> Option<Device> {
        Device::ALL.into_iter().find(|d| d.name() == s)
    }

    /// Guest-physical base of the frame.
    pub fn base(self) -> u64 {
        match self {
            Device::Gicd => ipa::GICD_BASE,
            Device::GicrRd => ipa::GICR_BASE,
            Device::GicrSgi => ipa::GICR_BASE + GICR_SGI_FRAME,
            Device::Uart => ipa::UART_BASE,
            Device::PciCfg => ipa::PCI_ECAM_BASE,
        }
    }

    /// Size of the frame (64 KiB for the GIC frames, one page for the PL011, the view's size).
    pub fn size(self) -> u64 {
        match self {
            Device::Uart => 0x1000,
            Device::PciCfg => ipa::PCI_ECAM_SIZE,
            _ => 0x1_0000,
        }
    }
}

/// One `mmioprobe` access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioProbe {
    /// Target frame.
    pub device: Device,
    /// Byte offset in the frame.
    pub offset: u64,
    /// Access width in bytes: 1, 2, 4 or 8.
    pub width: u64,
    /// `Some(value)` for a store, `None` for a load.
    pub write: Option<u64>,
}

impl MmioProbe {
    /// Guest-physical address of the access.
    pub fn addr(&self) -> u64 {
        self.device.base() + self.offset
    }
}

/// The usage line of `mmioprobe`.
pub const MMIOPROBE_USAGE: &str =
    "usage: mmioprobe <gicd|gicr|gicr-sgi|uart|pcicfg> <offset> <1|2|4|8> [value to write]";

/// Parses `mmioprobe <device> <offset> <width> [value]` (`args[0]` is the command name). The
/// access must lie inside the frame; alignment is deliberately not checked.
pub fn parse_mmioprobe(args: &[&str]) -> Result<MmioProbe, &'static str> {
    let (dev, off, width, value) = match args {
        [_, d, o, w] => (d, o, w, None),
        [_, d, o, w, v] => (d, o, w, Some(v)),
        _ => return Err(MMIOPROBE_USAGE),
    };
    let device = Device::parse(dev)
        .ok_or("mmioprobe: unknown device (gicd, gicr, gicr-sgi, uart, pcicfg)")?;
    let offset = crate::shell::parse_u64(off).ok_or("mmioprobe: bad offset")?;
    let width = crate::shell::parse_u64(width)
        .filter(|w| matches!(w, 1 | 2 | 4 | 8))
        .ok_or("mmioprobe: width must be 1, 2, 4 or 8")?;
    if offset
        .checked_add(width)
        .is_none_or(|end| end > device.size())
    {
        return Err("mmioprobe: access outside the device frame");
    }
    let write = match value {
        Some(v) => Some(crate::shell::parse_u64(v).ok_or("mmioprobe: bad value")?),
        None => None,
    };
    Ok(MmioProbe {
        device,
        offset,
        width,
        write,
    })
}

/// A shared region `execprobe` tries to execute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    /// The shared ring (read-write).
    Ring,
    /// The audit log (read-only).
    Audit,
    /// The model (read-only; guest-llm only).
    Model,
}

impl Region {
    /// Parses `ring`, `audit` or `model`.
    pub fn parse(s: &str) -> Option<Region> {
        match s {
            "ring" => Some(Region::Ring),
            "audit" => Some(Region::Audit),
            "model" => Some(Region::Model),
            _ => None,
        }
    }

    /// The region's guest-physical base in `info`, if this VM has it.
    pub fn base(self, info: &sis_platform::BootInfo) -> Option<u64> {
        let (base, size) = match self {
            Region::Ring => (info.shared_base, info.shared_size),
            Region::Audit => (info.audit_base, info.audit_size),
            Region::Model => (info.model_base, info.model_size),
        };
        (size > 0).then_some(base)
    }
}

/// EL1 system registers a core records at entry, before the runtime touches any of them (in
/// the order of [`EntryState::regs`]).
pub const ENTRY_REGS: [&str; 24] = [
    "SCTLR_EL1",
    "CPACR_EL1",
    "VBAR_EL1",
    "TTBR0_EL1",
    "TTBR1_EL1",
    "TCR_EL1",
    "MAIR_EL1",
    "AMAIR_EL1",
    "CONTEXTIDR_EL1",
    "TPIDR_EL1",
    "TPIDR_EL0",
    "TPIDRRO_EL0",
    "SP_EL0",
    "SP_EL1",
    "ELR_EL1",
    "SPSR_EL1",
    "ESR_EL1",
    "FAR_EL1",
    "AFSR0_EL1",
    "AFSR1_EL1",
    "PAR_EL1",
    "CNTKCTL_EL1",
    "CNTV_CTL_EL0",
    "CNTV_CVAL_EL0",
];

/// Index of SCTLR_EL1 in [`ENTRY_REGS`].
const SCTLR: usize = 0;
/// SCTLR_EL1 bits that must be clear at entry: M (MMU), A (alignment), C and I (caches).
const SCTLR_ON_BITS: u64 = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 12);

/// EL1 and FP/SIMD state one core found when it entered the kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryState {
    /// The registers of [`ENTRY_REGS`].
    pub regs: [u64; ENTRY_REGS.len()],
    /// FPCR.
    pub fpcr: u64,
    /// FPSR.
    pub fpsr: u64,
    /// q0..q31.
    pub q: [u128; 32],
}

/// Byte offset of `fpcr` in [`EntryState`] (used by the boot assembly).
pub const ENTRY_FPCR_OFFSET: usize = core::mem::offset_of!(EntryState, fpcr);
/// Byte offset of `q` in [`EntryState`] (used by the boot assembly).
pub const ENTRY_Q_OFFSET: usize = core::mem::offset_of!(EntryState, q);
const _: () = assert!(ENTRY_FPCR_OFFSET == 8 * ENTRY_REGS.len());
const _: () = assert!(core::mem::offset_of!(EntryState, fpsr) == ENTRY_FPCR_OFFSET + 8);
const _: () = assert!(ENTRY_Q_OFFSET == ENTRY_FPCR_OFFSET + 16);

impl EntryState {
    /// All zero.
    pub const ZERO: EntryState = EntryState {
        regs: [0; ENTRY_REGS.len()],
        fpcr: 0,
        fpsr: 0,
        q: [0; 32],
    };

    /// Registers that were not in their reset state (name, value): any nonzero register except
    /// SCTLR_EL1, which must only have the MMU, alignment check and caches off.
    pub fn leftovers(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        ENTRY_REGS
            .iter()
            .zip(self.regs.iter())
            .enumerate()
            .filter(|&(i, (_, &v))| {
                if i == SCTLR {
                    v & SCTLR_ON_BITS != 0
                } else {
                    v != 0
                }
            })
            .map(|(_, (&n, &v))| (n, v))
            .chain(
                [("FPCR", self.fpcr), ("FPSR", self.fpsr)]
                    .into_iter()
                    .filter(|&(_, v)| v != 0),
            )
    }

    /// How many of q0..q31 were nonzero.
    pub fn dirty_q(&self) -> usize {
        self.q.iter().filter(|&&q| q != 0).count()
    }

    /// Nothing of a previous run: [`Self::leftovers`] is empty and every q register is zero.
    pub fn clean(&self) -> bool {
        self.leftovers().next().is_none() && self.dirty_q() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_probes() {
        let p = parse_mmioprobe(&["mmioprobe", "gicd", "0x45d", "4"]).unwrap();
        assert_eq!(p.device, Device::Gicd);
        assert_eq!(p.addr(), ipa::GICD_BASE + 0x45d);
        assert_eq!((p.width, p.write), (4, None));
        let p = parse_mmioprobe(&["mmioprobe", "gicr-sgi", "0x41d", "4"]).unwrap();
        assert_eq!(p.addr(), ipa::GICR_BASE + 0x1_041d);
        let p = parse_mmioprobe(&["mmioprobe", "uart", "0x30", "2", "0x301"]).unwrap();
        assert_eq!(p.write, Some(0x301));
        assert_eq!(p.addr(), ipa::UART_BASE + 0x30);
    }

    #[test]
    fn refuses_bad_probes() {
        for args in [
            &["mmioprobe"][..],
            &["mmioprobe", "gicd", "0", "3"],
            &["mmioprobe", "gicx", "0", "4"],
            &["mmioprobe", "uart", "0xffd", "4"],
            &["mmioprobe", "gicd", "0x10000", "1"],
            &["mmioprobe", "gicd", "0xffffffffffffffff", "8"],
            &["mmioprobe", "gicd", "0", "4", "zz"],
        ] {
            assert!(parse_mmioprobe(args).is_err(), "{args:?}");
        }
        assert!(parse_mmioprobe(&["mmioprobe", "uart", "0xffc", "4"]).is_ok());
    }

    #[test]
    fn regions() {
        let mut info = sis_platform::BootInfo::native(64 << 20);
        info.shared_base = ipa::SHARED_BASE;
        info.shared_size = 0x10_0000;
        assert_eq!(
            Region::parse("ring").unwrap().base(&info),
            Some(ipa::SHARED_BASE)
        );
        assert_eq!(Region::parse("model").unwrap().base(&info), None);
        assert_eq!(Region::parse("heap"), None);
    }

    #[test]
    fn entry_state_judgement() {
        let mut s = EntryState::ZERO;
        s.regs[SCTLR] = 0x30d0_0800; // RES1 bits only: reset state
        assert!(s.clean());
        s.regs[SCTLR] |= 1; // MMU on
        assert_eq!(
            s.leftovers().collect::<Vec<_>>(),
            [("SCTLR_EL1", 0x30d0_0801)]
        );
        s.regs[SCTLR] = 0;
        s.regs[2] = 0x4008_0800;
        s.fpcr = 0x0300_0000;
        assert_eq!(
            s.leftovers().collect::<Vec<_>>(),
            [("VBAR_EL1", 0x4008_0800), ("FPCR", 0x0300_0000)]
        );
        let mut s = EntryState::ZERO;
        s.q[31] = 7;
        assert_eq!(s.dirty_q(), 1);
        assert!(!s.clean());
    }
}
