//! The emulated GICv3 distributor and redistributors of one VM, and its virtual-interrupt
//! pending state.
//!
//! Guests use the ICV system registers directly (list registers are managed in `lr.rs`); their
//! GICD/GICR accesses trap and are emulated here. A VM sees one redistributor frame per vCPU,
//! packed from `GICR_BASE`, whose `GICR_TYPER.Affinity` is the physical core's MPIDR (the guest
//! sees its real core numbers). Pending virtual interrupts are per-vCPU atomic bitmaps, so any
//! core may raise an interrupt for any vCPU; the owning core moves them into list registers.

use core::sync::atomic::{AtomicU32, Ordering};
use sis_platform::layout::irq;

use crate::access::{check, no_register, BadAccess, Widths};

/// INTIDs the emulated GIC implements (SGIs, PPIs, SPIs up to `irq::MAX_SPI`).
pub const NUM_IRQS: usize = irq::MAX_SPI as usize + 1;
const WORDS: usize = NUM_IRQS / 32;
/// Most vCPUs a VM can have.
pub const MAX_VCPUS: usize = 4;
/// Priority given to interrupts the guest never configured.
pub const DEFAULT_PRIORITY: u8 = 0xA0;

/// Distributor register offsets (the register map's) and the control bits the emulation uses.
mod gicd {
    pub use sis_regs::gic::gicd::*;
    use sis_regs::gic::GICD_CTLR;

    pub const CTLR_ARE: u32 = 1 << GICD_CTLR::ARE.shift;
    pub const CTLR_DS: u32 = 1 << GICD_CTLR::DS.shift;
    pub const CTLR_ENABLE_MASK: u32 =
        1 << GICD_CTLR::ENABLE_GRP0.shift | 1 << GICD_CTLR::ENABLE_GRP1.shift;
}

/// Redistributor register offsets (the register map's) and the bits the emulation uses.
mod gicr {
    pub use sis_regs::gic::gicr::*;
    use sis_regs::gic::{GICR_TYPER_LO, GICR_WAKER};

    pub const WAKER_SLEEP: u32 = 1 << GICR_WAKER::PROCESSOR_SLEEP.shift;
    pub const WAKER_CHILDREN_ASLEEP: u32 = 1 << GICR_WAKER::CHILDREN_ASLEEP.shift;
    pub const TYPER_LAST: u64 = 1 << GICR_TYPER_LO::LAST.shift;
}

/// Widths a distributor offset takes (GICv3 architecture, 12.1.3: word access to every
/// register; byte access to IPRIORITYR, ITARGETSR, CPENDSGIR, SPENDSGIR; 64-bit access, or
/// 32-bit to each half, to IROUTER). Reserved offsets are RES0 words.
pub fn dist_widths(off: u64) -> Widths {
    match off {
        gicd::IPRIORITYR..gicd::ITARGETSR_END | gicd::SGI_PEND..gicd::SGI_PEND_END => Widths::W8_32,
        gicd::IROUTER..gicd::IROUTER_END => Widths::W32_64,
        _ => Widths::W32,
    }
}

/// Widths an offset in a redistributor frame pair takes (RD_base, SGI_base): words, byte access
/// to the SGI/PPI priorities, 64-bit (or 32-bit halves) for GICR_TYPER and the LPI registers.
pub fn redist_widths(off: u64) -> Widths {
    match off % gicr::STRIDE {
        gicr::IPRIORITYR..gicr::IPRIORITYR_END => Widths::W8_32,
        gicr::TYPER => Widths::W32_64,
        o if gicr::LPI_REGS.contains(&o) => Widths::W32_64,
        _ => Widths::W32,
    }
}

/// Reads (`value` = None) or writes `size` bytes of a byte-per-INTID register array from index
/// `first`; indices beyond the array read as zero and ignore writes.
fn bytes_access(arr: &mut [u8], first: usize, size: u64, value: Option<u64>) -> u64 {
    let mut read = 0u64;
    for k in 0..size as usize {
        let slot = first.checked_add(k).and_then(|i| arr.get_mut(i));
        match (value, slot) {
            (Some(v), Some(b)) => *b = (v >> (8 * k)) as u8,
            (None, Some(b)) => read |= u64::from(*b) << (8 * k),
            (_, None) => {}
        }
    }
    read
}

/// GICv3 architecture revision in PIDR2.
const PIDR2_GICV3: u64 = 0x30;
/// Implementer code reported in IIDR ("SIS", JEP106-style value of our own).
const IIDR: u64 = 0x0053_4953;

/// Per-vCPU pending virtual interrupts: one bit per INTID.
pub struct Pending([AtomicU32; WORDS]);

impl Default for Pending {
    fn default() -> Self {
        Self::new()
    }
}

impl Pending {
    /// Nothing pending.
    pub const fn new() -> Self {
        Pending([const { AtomicU32::new(0) }; WORDS])
    }

    /// Marks `intid` pending. Returns false for an INTID the GIC does not have.
    pub fn raise(&self, intid: u32) -> bool {
        let i = intid as usize;
        if i >= NUM_IRQS {
            return false;
        }
        self.0[i / 32].fetch_or(1 << (i % 32), Ordering::AcqRel);
        true
    }

    /// Clears `intid`.
    pub fn clear(&self, intid: u32) {
        let i = intid as usize;
        if i < NUM_IRQS {
            self.0[i / 32].fetch_and(!(1 << (i % 32)), Ordering::AcqRel);
        }
    }

    /// One 32-bit word of the bitmap.
    pub fn word(&self, w: usize) -> u32 {
        self.0.get(w).map_or(0, |x| x.load(Ordering::Acquire))
    }

    /// Clears everything (VM stop).
    pub fn clear_all(&self) {
        for w in &self.0 {
            w.store(0, Ordering::Release);
        }
    }
}

/// What a guest's GIC access needs from the caller afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Effect {
    /// Enables or pending bits changed: move deliverable interrupts into list registers, on
    /// every vCPU of the VM.
    pub rescan: bool,
}

/// The result of an emulated access; a refused one stops the VM.
pub type AccessResult = Result<(u64, Effect), BadAccess>;

/// Redistributor state of one vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Redist {
    asleep: bool,
    enabled: u32,
    group: u32,
    priority: [u8; 32],
    cfg1: u32,
}

impl Redist {
    const fn new() -> Self {
        Redist {
            asleep: true,
            enabled: 0,
            group: 0,
            priority: [DEFAULT_PRIORITY; 32],
            cfg1: 0,
        }
    }
}

/// The emulated GIC of one VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vgic {
    ctlr: u32,
    enabled: [u32; WORDS],
    group: [u32; WORDS],
    priority: [u8; NUM_IRQS],
    cfg: [u32; WORDS * 2],
    route: [u64; NUM_IRQS],
    redist: [Redist; MAX_VCPUS],
    /// MPIDR affinity of each vCPU (its physical core).
    affinity: [u64; MAX_VCPUS],
    vcpus: usize,
}

impl Vgic {
    /// A GIC in reset state for vCPUs on the given physical cores.
    pub const fn new(cores: &[usize]) -> Self {
        let mut affinity = [0; MAX_VCPUS];
        let mut i = 0;
        while i < cores.len() && i < MAX_VCPUS {
            affinity[i] = cores[i] as u64;
            i += 1;
        }
        Vgic {
            ctlr: 0,
            enabled: [0; WORDS],
            group: [0; WORDS],
            priority: [DEFAULT_PRIORITY; NUM_IRQS],
            cfg: [0; WORDS * 2],
            route: [0; NUM_IRQS],
            redist: [Redist::new(); MAX_VCPUS],
            affinity,
            vcpus: if cores.len() < MAX_VCPUS {
                cores.len()
            } else {
                MAX_VCPUS
            },
        }
    }

    /// Number of vCPUs.
    pub fn vcpus(&self) -> usize {
        self.vcpus
    }

    /// Whether `intid` would be delivered to vCPU `v` now.
    pub fn deliverable(&self, v: usize, intid: u32) -> bool {
        let i = intid as usize;
        if i < 32 {
            v < self.vcpus && self.redist[v].enabled & (1 << i) != 0
        } else if i < NUM_IRQS {
            self.ctlr & gicd::CTLR_ENABLE_MASK != 0 && self.enabled[i / 32] & (1 << (i % 32)) != 0
        } else {
            false
        }
    }

    /// Mask of deliverable INTIDs in bitmap word `w` for vCPU `v`.
    pub fn deliverable_mask(&self, v: usize, w: usize) -> u32 {
        if w == 0 {
            if v < self.vcpus {
                self.redist.get(v).map_or(0, |r| r.enabled)
            } else {
                0
            }
        } else if self.ctlr & gicd::CTLR_ENABLE_MASK != 0 {
            self.enabled.get(w).copied().unwrap_or(0)
        } else {
            0
        }
    }

    /// Priority of `intid` as seen by vCPU `v`.
    pub fn priority(&self, v: usize, intid: u32) -> u8 {
        let i = intid as usize;
        if i < 32 {
            self.redist
                .get(v)
                .map_or(DEFAULT_PRIORITY, |r| r.priority[i])
        } else {
            self.priority.get(i).copied().unwrap_or(DEFAULT_PRIORITY)
        }
    }

    /// The vCPU an SPI is routed to (its IROUTER affinity, else the boot vCPU).
    pub fn target(&self, intid: u32) -> usize {
        let r = self.route.get(intid as usize).copied().unwrap_or(0);
        if r & (1 << 31) == 0 {
            let aff0 = r & 0xFF;
            if let Some(v) = self.affinity[..self.vcpus].iter().position(|&a| a == aff0) {
                return v;
            }
        }
        0
    }

    /// The vCPU index whose physical core is `core`.
    pub fn vcpu_of_core(&self, core: usize) -> Option<usize> {
        self.affinity[..self.vcpus]
            .iter()
            .position(|&a| a == core as u64)
    }

    /// A distributor access at `off` (`value` for a write) of `size` bytes.
    pub fn dist_access(
        &mut self,
        off: u64,
        size: u64,
        value: Option<u64>,
        pending: &[Pending],
    ) -> AccessResult {
        if off >= gicd::SIZE {
            return Err(no_register(off, size, value.is_some()));
        }
        check(off, size, value.is_some(), dist_widths(off))?;
        let mut effect = Effect::default();
        let v32 = value.map(|v| v as u32);
        // Index of the 32-bit word of a one-bit-per-INTID register array starting at `base`.
        let word = |base: u64| ((off - base) / 4) as usize;
        let read = match off {
            gicd::CTLR => match v32 {
                Some(v) => {
                    self.ctlr = v & gicd::CTLR_ENABLE_MASK;
                    effect.rescan = true;
                    0
                }
                None => u64::from(self.ctlr | gicd::CTLR_ARE | gicd::CTLR_DS),
            },
            gicd::TYPER => {
                // ITLinesNumber: 32 * (N + 1) INTIDs; IDbits: 10 bits.
                ((NUM_IRQS as u64 / 32) - 1) | (9 << 19)
            }
            gicd::IIDR => IIDR,
            gicd::IGROUPR..gicd::ISENABLER => {
                // Word 0 (SGIs and PPIs) lives in the redistributors.
                match (word(gicd::IGROUPR), v32) {
                    (0, _) => 0,
                    (w, Some(v)) => {
                        if let Some(g) = self.group.get_mut(w) {
                            *g = v;
                        }
                        0
                    }
                    (w, None) => self.group.get(w).map_or(0, |&g| u64::from(g)),
                }
            }
            gicd::ISENABLER..gicd::ISPENDR => {
                let set = off < gicd::ICENABLER;
                let w = word(if set {
                    gicd::ISENABLER
                } else {
                    gicd::ICENABLER
                });
                match (w, v32, self.enabled.get_mut(w)) {
                    (0, _, _) | (_, _, None) => 0,
                    (_, Some(v), Some(e)) => {
                        if set {
                            *e |= v;
                        } else {
                            *e &= !v;
                        }
                        effect.rescan = true;
                        0
                    }
                    (_, None, Some(e)) => u64::from(*e),
                }
            }
            gicd::ISPENDR..gicd::ISACTIVER => {
                let set = off < gicd::ICPENDR;
                let w = word(if set { gicd::ISPENDR } else { gicd::ICPENDR });
                match (w, v32) {
                    (0, _) | (WORDS.., _) => 0,
                    (w, Some(v)) => {
                        for bit in (0..32).filter(|b| v & (1 << b) != 0) {
                            let intid = (w * 32 + bit) as u32;
                            if let Some(p) = pending.get(self.target(intid)) {
                                if set {
                                    p.raise(intid);
                                } else {
                                    p.clear(intid);
                                }
                            }
                        }
                        effect.rescan = true;
                        0
                    }
                    (w, None) => u64::from(pending.iter().fold(0, |acc, p| acc | p.word(w))),
                }
            }
            // Active state lives in the list registers; RAZ/WI here.
            gicd::ISACTIVER..gicd::ICACTIVER_END => 0,
            gicd::IPRIORITYR..gicd::ITARGETSR_END => {
                // SGI/PPI priorities live in the redistributors; ITARGETSR is RAZ/WI with
                // affinity routing; both fall outside `priority[32..]` or are skipped here.
                let first = (off - gicd::IPRIORITYR) as usize;
                if first < 32 {
                    0
                } else {
                    bytes_access(&mut self.priority, first, size, value)
                }
            }
            gicd::ICFGR..gicd::ICFGR_END => match (word(gicd::ICFGR), v32) {
                (0 | 1, _) => 0,
                (w, Some(v)) => {
                    if let Some(c) = self.cfg.get_mut(w) {
                        *c = v;
                    }
                    0
                }
                (w, None) => self.cfg.get(w).map_or(0, |&c| u64::from(c)),
            },
            gicd::IROUTER..gicd::IROUTER_END => {
                let i = ((off - gicd::IROUTER) / 8) as usize;
                let shift = if off % 8 == 4 { 32 } else { 0 };
                let mask: u64 = if size == 8 {
                    u64::MAX
                } else {
                    0xFFFF_FFFF << shift
                };
                match (i, self.route.get_mut(i)) {
                    (0..32, _) | (_, None) => 0,
                    (_, Some(r)) => match value {
                        Some(v) => {
                            *r = (*r & !mask) | ((v << shift) & mask);
                            effect.rescan = true;
                            0
                        }
                        None => (*r & mask) >> shift,
                    },
                }
            }
            gicd::PIDR2 => PIDR2_GICV3,
            _ => 0,
        };
        Ok((read, effect))
    }

    /// A redistributor access at `off` from `GICR_BASE` of `size` bytes.
    pub fn redist_access(
        &mut self,
        off: u64,
        size: u64,
        value: Option<u64>,
        pending: &[Pending],
    ) -> AccessResult {
        let v = (off / gicr::STRIDE) as usize;
        let frame_off = off % gicr::STRIDE;
        if v >= self.vcpus {
            return Err(no_register(off, size, value.is_some()));
        }
        check(off, size, value.is_some(), redist_widths(off))?;
        let (Some(&affinity), Some(r), Some(pend)) =
            (self.affinity.get(v), self.redist.get_mut(v), pending.get(v))
        else {
            return Err(no_register(off, size, value.is_some()));
        };
        let mut effect = Effect::default();
        let v32 = value.map(|x| x as u32);
        let last = v + 1 == self.vcpus;
        let typer = (affinity << 32) | ((v as u64) << 8) | if last { gicr::TYPER_LAST } else { 0 };
        let read = match frame_off {
            gicr::CTLR => 0,
            gicr::IIDR => IIDR,
            gicr::TYPER if size == 8 => typer,
            gicr::TYPER => typer & 0xFFFF_FFFF,
            gicr::TYPER_HI => typer >> 32,
            gicr::WAKER => match v32 {
                Some(x) => {
                    r.asleep = x & gicr::WAKER_SLEEP != 0;
                    0
                }
                None if r.asleep => u64::from(gicr::WAKER_SLEEP | gicr::WAKER_CHILDREN_ASLEEP),
                None => 0,
            },
            gicr::PIDR2 => PIDR2_GICV3,
            gicr::IGROUPR0 => match v32 {
                Some(x) => {
                    r.group = x;
                    0
                }
                None => u64::from(r.group),
            },
            gicr::ISENABLER0 | gicr::ICENABLER0 => match v32 {
                Some(x) => {
                    if frame_off == gicr::ISENABLER0 {
                        r.enabled |= x;
                    } else {
                        r.enabled &= !x;
                    }
                    effect.rescan = true;
                    0
                }
                None => u64::from(r.enabled),
            },
            gicr::ISPENDR0 | gicr::ICPENDR0 => match v32 {
                Some(x) => {
                    for bit in (0..32).filter(|b| x & (1 << b) != 0) {
                        if frame_off == gicr::ISPENDR0 {
                            pend.raise(bit);
                        } else {
                            pend.clear(bit);
                        }
                    }
                    effect.rescan = true;
                    0
                }
                None => u64::from(pend.word(0)),
            },
            gicr::ISACTIVER0 | gicr::ICACTIVER0 => 0,
            gicr::IPRIORITYR..gicr::IPRIORITYR_END => bytes_access(
                &mut r.priority,
                (frame_off - gicr::IPRIORITYR) as usize,
                size,
                value,
            ),
            gicr::ICFGR0 => 0xAAAA_AAAA, // SGIs: edge, read-only
            gicr::ICFGR1 => match v32 {
                Some(x) => {
                    r.cfg1 = x;
                    0
                }
                None => u64::from(r.cfg1),
            },
            _ => 0,
        };
        Ok((read, effect))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pend(n: usize) -> [Pending; MAX_VCPUS] {
        let _ = n;
        [const { Pending::new() }; MAX_VCPUS]
    }

    #[test]
    fn spi_enable_needs_distributor_enable() {
        let p = pend(1);
        let mut g = Vgic::new(&[0]);
        g.dist_access(0x100 + 4, 4, Some(1 << 1), &p).unwrap(); // enable INTID 33
        assert!(!g.deliverable(0, 33), "distributor disabled");
        let (_, e) = g.dist_access(0, 4, Some(0x12), &p).unwrap();
        assert!(e.rescan);
        assert!(g.deliverable(0, 33));
        assert!(!g.deliverable(0, 34));
        g.dist_access(0x180 + 4, 4, Some(1 << 1), &p).unwrap();
        assert!(!g.deliverable(0, 33));
        assert_eq!(
            g.dist_access(0, 4, None, &p).unwrap().0 & 0x50,
            0x50,
            "ARE and DS read 1"
        );
    }

    #[test]
    fn redistributor_frames_report_affinity_and_last() {
        let p = pend(3);
        let mut g = Vgic::new(&[1, 2, 3]);
        let t0 = g.redist_access(0x8, 8, None, &p).unwrap().0;
        assert_eq!(t0 >> 32, 1);
        assert_eq!(t0 & (1 << 4), 0);
        let t2 = g.redist_access(2 * 0x2_0000 + 0x8, 8, None, &p).unwrap().0;
        assert_eq!(t2 >> 32, 3);
        assert_ne!(t2 & (1 << 4), 0, "last frame");
        assert_eq!(
            g.redist_access(2 * 0x2_0000 + 0xC, 4, None, &p).unwrap().0,
            3
        );
        assert!(
            g.redist_access(3 * 0x2_0000, 4, None, &p).is_err(),
            "no fourth vCPU"
        );
        assert_eq!(g.vcpu_of_core(2), Some(1));
    }

    #[test]
    fn waker_and_ppi_enable() {
        let p = pend(1);
        let mut g = Vgic::new(&[0]);
        assert_eq!(g.redist_access(0x14, 4, None, &p).unwrap().0, 0b110);
        g.redist_access(0x14, 4, Some(0), &p).unwrap();
        assert_eq!(g.redist_access(0x14, 4, None, &p).unwrap().0, 0);
        g.redist_access(0x1_0100, 4, Some(1 << 27), &p).unwrap();
        assert!(g.deliverable(0, 27));
        assert_eq!(g.deliverable_mask(0, 0), 1 << 27);
        g.redist_access(0x1_0400 + 24, 4, Some(0x8000_0000), &p)
            .unwrap();
        assert_eq!(g.priority(0, 27), 0x80);
    }

    #[test]
    fn routing_and_software_pending() {
        let p = pend(3);
        let mut g = Vgic::new(&[1, 2, 3]);
        g.dist_access(0x6000 + 8 * 40, 8, Some(3), &p).unwrap();
        assert_eq!(g.target(40), 2);
        g.dist_access(0x200 + 4, 4, Some(1 << 8), &p).unwrap(); // ISPENDR: INTID 40
        assert_eq!(p[2].word(1), 1 << 8);
        assert_eq!(g.dist_access(0x200 + 4, 4, None, &p).unwrap().0, 1 << 8);
        g.dist_access(0x280 + 4, 4, Some(1 << 8), &p).unwrap();
        assert_eq!(p[2].word(1), 0);
        // A route to a core the VM does not have falls back to the boot vCPU.
        g.dist_access(0x6000 + 8 * 41, 8, Some(0), &p).unwrap();
        assert_eq!(g.target(41), 0);
        // 32-bit halves of IROUTER.
        g.dist_access(0x6000 + 8 * 42, 4, Some(2), &p).unwrap();
        assert_eq!(g.dist_access(0x6000 + 8 * 42, 4, None, &p).unwrap().0, 2);
        assert_eq!(g.target(42), 1);
    }

    #[test]
    fn bad_accesses_are_errors() {
        let p = pend(1);
        let mut g = Vgic::new(&[0]);
        assert!(g.dist_access(0x100, 2, None, &p).is_err());
        assert!(g.dist_access(0x1_0000, 4, None, &p).is_err());
        assert!(g.redist_access(0x1_0100, 8, None, &p).is_err());
    }

    #[test]
    fn pending_bitmap() {
        let p = Pending::new();
        assert!(p.raise(33));
        assert!(!p.raise(NUM_IRQS as u32));
        assert_eq!(p.word(1), 1 << 1);
        p.clear(33);
        assert_eq!(p.word(1), 0);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// Access sizes a trapped load or store can have, plus nonsense ones.
        fn size() -> impl Strategy<Value = u64> {
            prop_oneof![Just(1u64), Just(2), Just(4), Just(8), any::<u64>()]
        }

        fn snapshot(p: &[Pending]) -> Vec<u32> {
            p.iter()
                .flat_map(|p| (0..WORDS).map(|w| p.word(w)))
                .collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4000))]

            /// Any distributor access: no panic; refused exactly when the width is not one the
            /// register takes or the access is not naturally aligned; a refused access changes
            /// nothing; a read returns no more bits than its width.
            #[test]
            fn distributor_accesses_are_checked(
                cores in prop::sample::select(vec![vec![0usize], vec![1, 2, 3]]),
                setup in prop::collection::vec((0u64..0x1_0000, any::<u64>()), 0..16),
                off in prop_oneof![
                    0u64..0x1_0000,
                    0x3F0u64..0xC10, // priorities and targets, with their edges
                    0x5FF0u64..0x8010, // routing
                    0xF00u64..0xF40,
                    0xFFC0u64..0x1_0010,
                    any::<u64>(),
                ],
                size in size(),
                value in prop::option::of(any::<u64>()),
            ) {
                let p = [const { Pending::new() }; MAX_VCPUS];
                let mut g = Vgic::new(&cores);
                for (o, v) in setup {
                    let _ = g.dist_access(o & !3, 4, Some(v), &p);
                }
                let (before, pend_before) = (g.clone(), snapshot(&p));
                let allowed = off < 0x1_0000
                    && dist_widths(off).contains(size)
                    && off % size == 0;
                match g.dist_access(off, size, value, &p) {
                    Ok((r, _)) => {
                        prop_assert!(allowed, "accepted {off:#x}/{size}");
                        if size < 8 {
                            prop_assert!(r >> (8 * size) == 0, "{r:#x} wider than {size}");
                        }
                    }
                    Err(e) => {
                        prop_assert!(!allowed, "refused {off:#x}/{size}: {e}");
                        prop_assert!(g == before, "refused access changed state");
                        prop_assert_eq!(snapshot(&p), pend_before);
                    }
                }
                for i in 0..NUM_IRQS as u32 + 2 {
                    let _ = (g.deliverable(0, i), g.priority(0, i), g.target(i));
                }
            }

            /// The same for the redistributor frames (RD and SGI), including frames of vCPUs the
            /// VM does not have.
            #[test]
            fn redistributor_accesses_are_checked(
                cores in prop::sample::select(vec![vec![0usize], vec![1, 2, 3]]),
                off in prop_oneof![
                    0u64..5 * 0x2_0000,
                    (0u64..5, 0u64..0x100).prop_map(|(v, o)| v * 0x2_0000 + o), // RD registers
                    (0u64..5, 0x1_03F0u64..0x1_0430).prop_map(|(v, o)| v * 0x2_0000 + o),
                    (0u64..5, 0x1_0000u64..0x1_0D00).prop_map(|(v, o)| v * 0x2_0000 + o),
                    any::<u64>(),
                ],
                size in size(),
                value in prop::option::of(any::<u64>()),
            ) {
                let p = [const { Pending::new() }; MAX_VCPUS];
                let mut g = Vgic::new(&cores);
                let (before, pend_before) = (g.clone(), snapshot(&p));
                let allowed = off / 0x2_0000 < cores.len() as u64
                    && redist_widths(off).contains(size)
                    && off % size == 0;
                match g.redist_access(off, size, value, &p) {
                    Ok((r, _)) => {
                        prop_assert!(allowed, "accepted {off:#x}/{size}");
                        if size < 8 {
                            prop_assert!(r >> (8 * size) == 0, "{r:#x} wider than {size}");
                        }
                    }
                    Err(e) => {
                        prop_assert!(!allowed, "refused {off:#x}/{size}: {e}");
                        prop_assert!(g == before, "refused access changed state");
                        prop_assert_eq!(snapshot(&p), pend_before);
                    }
                }
            }

            /// Byte and word views of the priority registers agree, at every INTID the GIC has.
            #[test]
            fn priority_bytes_and_words_agree(intid in 32u32..NUM_IRQS as u32, prio in any::<u8>()) {
                let p = [const { Pending::new() }; MAX_VCPUS];
                let mut g = Vgic::new(&[0]);
                let off = 0x400 + u64::from(intid);
                g.dist_access(off, 1, Some(u64::from(prio)), &p).unwrap();
                prop_assert_eq!(g.priority(0, intid), prio);
                let word = g.dist_access(off & !3, 4, None, &p).unwrap().0;
                prop_assert_eq!((word >> (8 * (off % 4))) as u8, prio);
                prop_assert_eq!(g.dist_access(off, 1, None, &p).unwrap().0, u64::from(prio));
            }
        }
    }
}
