//! The filtered view of configuration space a VM gets: bus 0 in ECAM layout, where it sees only
//! its own functions (everything else reads as absent, all-ones, and ignores writes).
//!
//! On its own functions the VM reads the real registers, except:
//! - **BARs**: the real register never changes. Writing all-ones makes the register read its
//!   size mask (sizing works as on hardware); writing the current address back ends that; any
//!   other value is refused. The expansion ROM BAR reads 0 (no ROM).
//! - **Command**: only memory decode, bus mastering and INTx disable reach the device.
//! - **Interrupt line**: a scratch byte kept here (the routing is fixed: INTx of the slot).
//! - **Everything else** (status, capabilities, the device's own registers) is read-only.
//!
//! Every access must be 1, 2 or 4 bytes, naturally aligned, inside the view; anything else is
//! an [`AccessError`] (the caller stops the VM). Refused writes change nothing and are counted
//! by the caller.

use sis_platform::partition::VmId;

use super::enumerate::Bus;
use super::{command, reg, ConfigAccess, ABSENT};

/// Bytes of the view: one bus.
pub const VIEW_SIZE: u64 = 32 * 8 * reg::SPACE as u64;

/// Why an access to the view is not allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessError {
    /// Not 1, 2 or 4 bytes.
    Width(u64),
    /// Not aligned to its size.
    Alignment(u64),
    /// Outside the view.
    Range(u64),
}

impl core::fmt::Display for AccessError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            AccessError::Width(n) => write!(f, "{n}-byte access (1, 2 or 4 allowed)"),
            AccessError::Alignment(n) => write!(f, "{n}-byte access not aligned"),
            AccessError::Range(o) => write!(f, "offset {o:#x} outside the view"),
        }
    }
}

/// What an allowed access did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Done {
    /// The value read (0 for writes).
    pub value: u64,
    /// A write (or part of one) that was refused.
    pub refused: bool,
}

impl Bus {
    /// `vm` accesses its view at `offset` with `size` bytes; `write` carries the value of a
    /// write. Real registers are reached through `cfg`.
    pub fn view_access(
        &mut self,
        vm: VmId,
        cfg: &mut impl ConfigAccess,
        offset: u64,
        size: u64,
        write: Option<u64>,
    ) -> Result<Done, AccessError> {
        if !matches!(size, 1 | 2 | 4) {
            return Err(AccessError::Width(size));
        }
        if !offset.is_multiple_of(size) {
            return Err(AccessError::Alignment(size));
        }
        if offset >= VIEW_SIZE {
            return Err(AccessError::Range(offset));
        }
        let rid = (offset >> 12) as u32;
        let dword = (offset & 0xFFC) as u16;
        let shift = 8 * (offset & 3);
        let mask = if size == 4 {
            u32::MAX
        } else {
            (1u32 << (8 * size)) - 1
        };
        let owned = self.get(rid).is_some_and(|f| f.owner == Some(vm));
        if !owned {
            return Ok(Done {
                value: if write.is_some() {
                    0
                } else {
                    u64::from((ABSENT >> shift) & mask)
                },
                refused: write.is_some(),
            });
        }
        match write {
            None => {
                let v = self.read_dword(cfg, rid, dword);
                Ok(Done {
                    value: u64::from((v >> shift) & mask),
                    refused: false,
                })
            }
            Some(x) => {
                let data = ((x as u32) & mask) << shift;
                let bytes = mask << shift;
                let refused = !self.write_dword(cfg, rid, dword, data, bytes);
                Ok(Done { value: 0, refused })
            }
        }
    }

    /// The dword the owner reads at `dword` of its function `rid`.
    fn read_dword(&mut self, cfg: &mut impl ConfigAccess, rid: u32, dword: u16) -> u32 {
        let Some(f) = self.get(rid).copied() else {
            return ABSENT;
        };
        match dword {
            reg::BAR0..=0x24 => {
                let index = usize::from((dword - reg::BAR0) / 4);
                match f.bar_of_register(index) {
                    Some((bar, half)) if f.sizing & (1 << index) != 0 => bar.sizing_value(half),
                    Some((bar, half)) => bar.register(half),
                    None => 0,
                }
            }
            reg::ROM => 0,
            reg::INTERRUPT => (cfg.read(rid, dword) & !0xFF) | u32::from(f.line),
            _ => cfg.read(rid, dword),
        }
    }

    /// Applies the bytes `bytes` of `data` written at `dword` of function `rid`; false if
    /// any of it was refused.
    fn write_dword(
        &mut self,
        cfg: &mut impl ConfigAccess,
        rid: u32,
        dword: u16,
        data: u32,
        bytes: u32,
    ) -> bool {
        let Some(f) = self.get_mut(rid) else {
            return false;
        };
        match dword {
            reg::COMMAND => {
                let allowed = bytes & command::GUEST_WRITABLE;
                let cur = cfg.read(rid, reg::COMMAND) & 0xFFFF;
                let new = (cur & !allowed) | (data & allowed);
                if new != cur {
                    // The status half is written as zeros: its error bits are write-1-to-clear.
                    cfg.write(rid, reg::COMMAND, new);
                }
                // Changing other command bits, or clearing status bits (write-1-to-clear), is
                // refused; rewriting the command's current value, or zeros into the status, is
                // what drivers do and not a refusal.
                (data ^ cur) & bytes & !command::GUEST_WRITABLE & 0xFFFF == 0
                    && data & bytes & 0xFFFF_0000 == 0
            }
            reg::BAR0..=0x24 => {
                let index = usize::from((dword - reg::BAR0) / 4);
                let Some((bar, half)) = f.bar_of_register(index) else {
                    return data & bytes == 0;
                };
                f.sizing &= !(1 << index);
                if bytes != u32::MAX {
                    return false;
                }
                if data == u32::MAX {
                    f.sizing |= 1 << index;
                    true
                } else if half == 0 {
                    // The low four bits are the read-only type flags.
                    data & !0xF == bar.register(0) & !0xF
                } else {
                    data == bar.register(1)
                }
            }
            reg::INTERRUPT => {
                if bytes & 0xFF != 0 {
                    f.line = data as u8;
                }
                bytes & !0xFF == 0
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::enumerate::{BarWindow, Bus};
    use crate::pci::fake::Fake;
    use proptest::prelude::*;
    use sis_platform::layout::phys;
    use sis_platform::partition::{PARTITIONS, VM_CTL, VM_LLM};
    extern crate std;
    use std::vec::Vec;

    fn setup() -> (Bus, Fake) {
        let mut cfg = Fake::qemu_virt();
        // A bridge no VM owns, to check that its bus numbers never change.
        cfg.add_bridge(0x18);
        let bus = Bus::enumerate(
            &mut cfg,
            &PARTITIONS,
            &mut BarWindow::new(phys::PCIE_BAR_BASE, phys::PCIE_BAR_SIZE),
        );
        cfg.writes.clear();
        (bus, cfg)
    }

    fn read(bus: &mut Bus, cfg: &mut Fake, vm: VmId, off: u64, size: u64) -> u64 {
        bus.view_access(vm, cfg, off, size, None).unwrap().value
    }

    fn write(bus: &mut Bus, cfg: &mut Fake, vm: VmId, off: u64, size: u64, v: u64) -> bool {
        !bus.view_access(vm, cfg, off, size, Some(v))
            .unwrap()
            .refused
    }

    const CONSOLE: u64 = 0x08 << 12;

    #[test]
    fn own_functions_only() {
        let (mut bus, mut cfg) = setup();
        // The owner sees its devices' IDs...
        assert_eq!(read(&mut bus, &mut cfg, VM_CTL, CONSOLE, 4), 0x1043_1AF4);
        assert_eq!(read(&mut bus, &mut cfg, VM_CTL, CONSOLE + 2, 2), 0x1043);
        assert_eq!(read(&mut bus, &mut cfg, VM_CTL, 0x10 << 12, 2), 0x1AF4);
        // ...and neither the host bridge nor the bridge nor empty slots.
        for off in [0, 0x18 << 12, 0x20 << 12, 0x18 << 12 | 0x18] {
            assert_eq!(read(&mut bus, &mut cfg, VM_CTL, off, 4), 0xFFFF_FFFF);
        }
        // Another VM sees nothing at all, and its writes go nowhere.
        assert_eq!(read(&mut bus, &mut cfg, VM_LLM, CONSOLE, 4), 0xFFFF_FFFF);
        assert_eq!(read(&mut bus, &mut cfg, VM_LLM, CONSOLE, 1), 0xFF);
        assert!(!write(&mut bus, &mut cfg, VM_LLM, CONSOLE + 4, 2, 0x7));
        assert!(cfg.writes.is_empty());
    }

    #[test]
    fn bars_size_but_never_move() {
        let (mut bus, mut cfg) = setup();
        let bar4 = CONSOLE + 0x20;
        let addr = read(&mut bus, &mut cfg, VM_CTL, bar4, 4);
        assert_eq!(addr, phys::PCIE_BAR_BASE | 0xC);
        // Sizing: all-ones, read the mask (16 KiB, 64-bit prefetchable), restore.
        assert!(write(&mut bus, &mut cfg, VM_CTL, bar4, 4, 0xFFFF_FFFF));
        assert_eq!(read(&mut bus, &mut cfg, VM_CTL, bar4, 4), 0xFFFF_C00C);
        assert!(write(&mut bus, &mut cfg, VM_CTL, bar4 + 4, 4, 0xFFFF_FFFF));
        assert_eq!(read(&mut bus, &mut cfg, VM_CTL, bar4 + 4, 4), 0xFFFF_FFFF);
        assert!(write(&mut bus, &mut cfg, VM_CTL, bar4 + 4, 4, 0));
        assert!(write(&mut bus, &mut cfg, VM_CTL, bar4, 4, addr));
        assert_eq!(read(&mut bus, &mut cfg, VM_CTL, bar4, 4), addr);
        // Moving it is refused; it still reads (and really is) where it was.
        assert!(!write(&mut bus, &mut cfg, VM_CTL, bar4, 4, 0x2000_0000));
        assert!(!write(&mut bus, &mut cfg, VM_CTL, bar4 + 4, 4, 1));
        assert!(!write(&mut bus, &mut cfg, VM_CTL, bar4, 2, 0xFFFF));
        assert_eq!(read(&mut bus, &mut cfg, VM_CTL, bar4, 4), addr);
        assert_eq!(read(&mut bus, &mut cfg, VM_CTL, bar4 + 4, 4), 0);
        // Unimplemented BARs and the ROM read 0.
        assert_eq!(read(&mut bus, &mut cfg, VM_CTL, CONSOLE + 0x10, 4), 0);
        assert!(!write(&mut bus, &mut cfg, VM_CTL, CONSOLE + 0x30, 4, 0));
        assert_eq!(read(&mut bus, &mut cfg, VM_CTL, CONSOLE + 0x30, 4), 0);
        assert!(cfg.writes.is_empty(), "{:?}", cfg.writes);
        assert_eq!(cfg.reg(0x08, 0x20), addr as u32);
    }

    #[test]
    fn command_interrupt_line_and_read_only_registers() {
        let (mut bus, mut cfg) = setup();
        // Enumeration left INTx disabled and nothing decoding.
        assert_eq!(read(&mut bus, &mut cfg, VM_CTL, CONSOLE + 4, 2), 0x400);
        // Memory decode + bus master + I/O space (INTx enabled): I/O space is refused, the
        // rest applied.
        assert!(!write(&mut bus, &mut cfg, VM_CTL, CONSOLE + 4, 2, 0x7));
        assert_eq!(cfg.reg(0x08, 4) & 0xFFFF, 0x0006);
        assert!(write(&mut bus, &mut cfg, VM_CTL, CONSOLE + 4, 2, 0x6));
        assert_eq!(read(&mut bus, &mut cfg, VM_CTL, CONSOLE + 4, 2), 0x6);
        assert!(write(&mut bus, &mut cfg, VM_CTL, CONSOLE + 5, 1, 0x4));
        assert_eq!(read(&mut bus, &mut cfg, VM_CTL, CONSOLE + 4, 2), 0x406);
        // Status bits come with the read; clearing them is refused, a whole-dword write with
        // the status half zero (what drivers write) is not.
        assert_eq!(read(&mut bus, &mut cfg, VM_CTL, CONSOLE + 6, 2), 0x10);
        assert!(!write(&mut bus, &mut cfg, VM_CTL, CONSOLE + 6, 2, 0xFFFF));
        assert!(write(
            &mut bus,
            &mut cfg,
            VM_CTL,
            CONSOLE + 4,
            4,
            0x0000_0006
        ));
        // The interrupt line is a scratch byte; the pin is read-only.
        assert!(write(&mut bus, &mut cfg, VM_CTL, CONSOLE + 0x3C, 1, 36));
        assert_eq!(read(&mut bus, &mut cfg, VM_CTL, CONSOLE + 0x3C, 2), 0x0124);
        assert!(!write(&mut bus, &mut cfg, VM_CTL, CONSOLE + 0x3D, 1, 2));
        assert_eq!(read(&mut bus, &mut cfg, VM_CTL, CONSOLE + 0x3D, 1), 1);
        // IDs, capabilities: read-only.
        assert!(!write(&mut bus, &mut cfg, VM_CTL, CONSOLE, 4, 0));
        assert!(!write(&mut bus, &mut cfg, VM_CTL, CONSOLE + 0x44, 4, 0));
        assert_eq!(
            cfg.writes_to(0x08),
            [(0x04, 0x0006), (0x04, 0x0406), (0x04, 0x0006)]
        );
    }

    #[test]
    fn bad_width_alignment_and_range() {
        let (mut bus, mut cfg) = setup();
        for (off, size, e) in [
            (CONSOLE, 8, AccessError::Width(8)),
            (CONSOLE, 3, AccessError::Width(3)),
            (CONSOLE, 0, AccessError::Width(0)),
            (CONSOLE + 1, 2, AccessError::Alignment(2)),
            (CONSOLE + 2, 4, AccessError::Alignment(4)),
            (VIEW_SIZE, 4, AccessError::Range(VIEW_SIZE)),
        ] {
            assert_eq!(bus.view_access(VM_CTL, &mut cfg, off, size, None), Err(e));
            assert_eq!(
                bus.view_access(VM_CTL, &mut cfg, off, size, Some(0)),
                Err(e)
            );
        }
        assert!(cfg.writes.is_empty());
    }

    /// One access: (offset, size, Some(value) for a write).
    fn access() -> impl Strategy<Value = (u64, u64, Option<u64>)> {
        let offset = prop_oneof![
            // The first 0x100 bytes of the first four slots (headers, capabilities)...
            (0u64..4, 0u64..0x100).prop_map(|(d, r)| d << 15 | r),
            // ...any function's whole space, and beyond the view.
            0u64..VIEW_SIZE,
            any::<u64>(),
        ];
        let size = prop_oneof![Just(1u64), Just(2), Just(4), 0u64..16];
        let value = prop_oneof![Just(u64::MAX), Just(0xFFFF_FFFF), any::<u64>()];
        (offset, size, proptest::option::of(value))
    }

    proptest! {
        /// Random accesses from either VM: never a panic; errors exactly for bad widths,
        /// alignments and ranges; absent reads all-ones; the real BARs, the bridge's bus numbers
        /// and every register but the owner's command bits never change.
        #[test]
        fn random_accesses_change_only_what_they_may(
            ops in proptest::collection::vec((any::<bool>(), access()), 1..200)
        ) {
            let (mut bus, mut cfg) = setup();
            let before = cfg.clone();
            for (as_llm, (off, size, w)) in ops {
                let vm = if as_llm { VM_LLM } else { VM_CTL };
                let r = bus.view_access(vm, &mut cfg, off, size, w);
                let bad = !matches!(size, 1 | 2 | 4) || off % size != 0 || off >= VIEW_SIZE;
                prop_assert_eq!(r.is_err(), bad, "{:#x}/{}: {:?}", off, size, r);
                if let Ok(d) = r {
                    let owned = matches!(off >> 12, 0x08 | 0x10) && vm == VM_CTL;
                    if w.is_none() && !owned {
                        prop_assert_eq!(d.value, (1u64 << (8 * size)) - 1);
                    }
                    if w.is_some() && !owned {
                        prop_assert!(d.refused);
                    }
                    prop_assert!(d.value < 1u64 << (8 * size));
                }
            }
            for (rid, s) in &cfg.functions {
                let old = &before.functions[rid];
                for d in 0..1024usize {
                    let changed = s.regs[d] ^ old.regs[d];
                    let allowed = if d == 1 && matches!(rid, 0x08 | 0x10) {
                        command::GUEST_WRITABLE
                    } else {
                        0
                    };
                    prop_assert_eq!(changed & !allowed, 0, "{:#x} dword {:#x}", rid, d * 4);
                }
            }
            let written: Vec<u32> = cfg.writes.iter().map(|w| w.0).collect();
            prop_assert!(written.iter().all(|r| matches!(r, 0x08 | 0x10)), "{:?}", written);
            prop_assert!(cfg.writes.iter().all(|w| w.1 == reg::COMMAND));
        }
    }
}
