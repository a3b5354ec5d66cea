//! The shared region: header, geometry, and the two rings.
//!
//! The control guest initialises the region ([`init`]); the LLM guest attaches to it
//! ([`attach`]) and gets an error, never a panic, if the header is missing or inconsistent.
//! The header is read once at attach time and copied; nothing a peer writes to it later is used.

use crate::mem::{Mem, Ordering};
use crate::message::{Request, Response};
use crate::ring::{
    Consumer, Producer, RingSnapshot, RingView, SendError, MAX_SLOT_SIZE, RING_CONTROL, SLOT_HEADER,
};

/// `"SISRING1"` little-endian.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SISRING1");
/// Layout version.
pub const VERSION: u64 = 1;
/// Bytes reserved for the header at the start of the region.
pub const HEADER_SIZE: usize = 256;
/// Most slots in one ring.
pub const MAX_CAPACITY: u64 = 1 << 16;

/// Header word offsets.
mod hw {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 1;
    pub const LEN: usize = 2;
    pub const EPOCH: usize = 3;
    pub const REQ: usize = 4;
    pub const RESP: usize = 7;
}

/// Placement of one ring inside the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingGeometry {
    /// Byte offset of the ring's control block from the region base (64-byte aligned).
    pub offset: u64,
    /// Number of slots (a power of two, 2..=[`MAX_CAPACITY`]).
    pub capacity: u64,
    /// Bytes per slot including its 16-byte header (a multiple of 8, at most
    /// [`MAX_SLOT_SIZE`]).
    pub slot_size: u64,
}

impl RingGeometry {
    /// Payload bytes per slot.
    pub fn payload(&self) -> u64 {
        self.slot_size.saturating_sub(SLOT_HEADER as u64)
    }

    /// Bytes the ring occupies (control block plus slots), if that does not overflow.
    pub fn span(&self) -> Option<u64> {
        self.capacity
            .checked_mul(self.slot_size)?
            .checked_add(RING_CONTROL as u64)
    }

    fn check(&self, region_len: u64) -> Result<(), RegionError> {
        if !self.offset.is_multiple_of(64) || self.offset < HEADER_SIZE as u64 {
            return Err(RegionError::BadGeometry(
                "ring offset not aligned or inside header",
            ));
        }
        if !self.capacity.is_power_of_two() || self.capacity < 2 || self.capacity > MAX_CAPACITY {
            return Err(RegionError::BadGeometry(
                "ring capacity not a power of two in 2..=65536",
            ));
        }
        if !self.slot_size.is_multiple_of(8)
            || self.slot_size < SLOT_HEADER as u64 + 8
            || self.slot_size > MAX_SLOT_SIZE as u64
        {
            return Err(RegionError::BadGeometry(
                "slot size not a multiple of 8 in 24..=2048",
            ));
        }
        match self.span().and_then(|s| s.checked_add(self.offset)) {
            Some(end) if end <= region_len => Ok(()),
            _ => Err(RegionError::BadGeometry("ring extends past the region")),
        }
    }

    fn end(&self) -> u64 {
        self.offset + self.span().unwrap_or(u64::MAX - self.offset)
    }
}

/// Placement of both rings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Control → LLM requests.
    pub requests: RingGeometry,
    /// LLM → control responses and streamed tokens.
    pub responses: RingGeometry,
}

impl Geometry {
    /// The layout SIS uses in its 1 MiB shared region: 128 request slots of 1664 bytes (an
    /// `Infer` with a full 1 KiB prompt, every sampling field, 4 stop strings of 64 bytes and a
    /// 256-byte system message fits) at 0x1000 and 1024 response slots of 384 bytes (a 256-byte
    /// token chunk fits) at 0x36000. Needs 0x96200 bytes.
    pub const DEFAULT: Geometry = Geometry {
        requests: RingGeometry {
            offset: 0x1000,
            capacity: 128,
            slot_size: 1664,
        },
        responses: RingGeometry {
            offset: 0x3_6000,
            capacity: 1024,
            slot_size: 384,
        },
    };

    /// Checks the geometry against a region of `len` bytes.
    ///
    /// # Errors
    /// [`RegionError::BadGeometry`] naming the first rule broken.
    pub fn validate(&self, len: u64) -> Result<(), RegionError> {
        self.requests.check(len)?;
        self.responses.check(len)?;
        let (a, b) = (&self.requests, &self.responses);
        if a.offset < b.end() && b.offset < a.end() {
            return Err(RegionError::BadGeometry("rings overlap"));
        }
        Ok(())
    }
}

/// Why a region could not be initialised or attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionError {
    /// The region is smaller than the header.
    TooSmall,
    /// The header's magic is wrong: not initialised (yet), or not a SIS ring region.
    BadMagic(u64),
    /// Unknown layout version.
    BadVersion(u64),
    /// The header's recorded length differs from the mapping's.
    LengthMismatch {
        /// Length recorded in the header.
        header: u64,
        /// Length of the mapping.
        mapped: u64,
    },
    /// The geometry breaks a rule.
    BadGeometry(&'static str),
    /// A ring's published indices are inconsistent (head more than a ring ahead of tail).
    BadIndices,
}

impl From<SendError> for RegionError {
    fn from(_: SendError) -> Self {
        RegionError::BadIndices
    }
}

/// The control guest's end: it sends requests and receives responses.
#[derive(Debug)]
pub struct CtlEnd<M> {
    /// Requests to the LLM guest.
    pub requests: Producer<Request, M>,
    /// Responses and streamed tokens from the LLM guest.
    pub responses: Consumer<Response, M>,
    /// Epoch written by this initialisation.
    pub epoch: u64,
}

/// The LLM guest's end: it receives requests and sends responses.
#[derive(Debug)]
pub struct LlmEnd<M> {
    /// Requests from the control guest.
    pub requests: Consumer<Request, M>,
    /// Responses and streamed tokens to the control guest.
    pub responses: Producer<Response, M>,
    /// Epoch of the initialisation attached to.
    pub epoch: u64,
}

fn view<M: Mem>(mem: &M, g: &RingGeometry) -> RingView<M> {
    RingView {
        mem: mem.clone(),
        base: (g.offset / 8) as usize,
        cap: g.capacity,
        slot_words: (g.slot_size / 8) as usize,
    }
}

fn region_len<M: Mem>(mem: &M) -> Result<u64, RegionError> {
    let len = (mem.words() as u64) * 8;
    if len < HEADER_SIZE as u64 {
        return Err(RegionError::TooSmall);
    }
    Ok(len)
}

/// Initialises the region with `geometry` (control guest, at boot or after its restart): writes
/// the rings' initial state, then the header, the magic last with release ordering. The epoch
/// is one more than the previous initialisation's if the region held a valid header.
///
/// # Errors
/// [`RegionError::TooSmall`] or [`RegionError::BadGeometry`]; the region is left untouched.
pub fn init<M: Mem>(mem: M, geometry: &Geometry) -> Result<CtlEnd<M>, RegionError> {
    let len = region_len(&mem)?;
    geometry.validate(len)?;
    let epoch = if mem.load(hw::MAGIC, Ordering::Acquire) == MAGIC {
        mem.load(hw::EPOCH, Ordering::Relaxed).wrapping_add(1)
    } else {
        1
    };
    // Retract the old header first so an attacher never sees new rings under an old header.
    mem.store(hw::MAGIC, 0, Ordering::Relaxed);
    mem.fence(Ordering::Release);
    let req = view(&mem, &geometry.requests);
    let resp = view(&mem, &geometry.responses);
    req.reset();
    resp.reset();
    mem.store(hw::VERSION, VERSION, Ordering::Relaxed);
    mem.store(hw::LEN, len, Ordering::Relaxed);
    mem.store(hw::EPOCH, epoch, Ordering::Relaxed);
    for (base, g) in [
        (hw::REQ, &geometry.requests),
        (hw::RESP, &geometry.responses),
    ] {
        mem.store(base, g.offset, Ordering::Relaxed);
        mem.store(base + 1, g.capacity, Ordering::Relaxed);
        mem.store(base + 2, g.slot_size, Ordering::Relaxed);
    }
    mem.store(hw::MAGIC, MAGIC, Ordering::Release);
    Ok(CtlEnd {
        requests: Producer::new(req)?,
        responses: Consumer::new(resp),
        epoch,
    })
}

/// Reads and validates the header (magic, version, length, geometry). Returns the geometry and
/// epoch.
///
/// # Errors
/// [`RegionError`] describing the first inconsistency.
pub fn read_header<M: Mem>(mem: &M) -> Result<(Geometry, u64), RegionError> {
    let len = region_len(mem)?;
    let magic = mem.load(hw::MAGIC, Ordering::Acquire);
    if magic != MAGIC {
        return Err(RegionError::BadMagic(magic));
    }
    let version = mem.load(hw::VERSION, Ordering::Relaxed);
    if version != VERSION {
        return Err(RegionError::BadVersion(version));
    }
    let hlen = mem.load(hw::LEN, Ordering::Relaxed);
    if hlen != len {
        return Err(RegionError::LengthMismatch {
            header: hlen,
            mapped: len,
        });
    }
    let ring = |base: usize| RingGeometry {
        offset: mem.load(base, Ordering::Relaxed),
        capacity: mem.load(base + 1, Ordering::Relaxed),
        slot_size: mem.load(base + 2, Ordering::Relaxed),
    };
    let g = Geometry {
        requests: ring(hw::REQ),
        responses: ring(hw::RESP),
    };
    g.validate(len)?;
    Ok((g, mem.load(hw::EPOCH, Ordering::Relaxed)))
}

/// Attaches to a region the control guest initialised (LLM guest). Producer and consumer resume
/// at the published head and tail, so an LLM guest restart continues the same rings.
///
/// # Errors
/// [`RegionError`]: not initialised yet ([`RegionError::BadMagic`]), or an inconsistent header or
/// response ring.
pub fn attach<M: Mem>(mem: M) -> Result<LlmEnd<M>, RegionError> {
    let (g, epoch) = read_header(&mem)?;
    Ok(LlmEnd {
        requests: Consumer::new(view(&mem, &g.requests)),
        responses: Producer::new(view(&mem, &g.responses))?,
        epoch,
    })
}

/// The current epoch, to notice a re-initialisation by the control guest (then re-attach).
///
/// # Errors
/// As [`read_header`].
pub fn epoch<M: Mem>(mem: &M) -> Result<u64, RegionError> {
    read_header(mem).map(|(_, e)| e)
}

/// What a monitor (the hypervisor's `hv>`) shows of the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionSnapshot {
    /// Initialisation epoch.
    pub epoch: u64,
    /// The request ring.
    pub requests: RingSnapshot,
    /// The response ring.
    pub responses: RingSnapshot,
}

/// Reads a snapshot of both rings without taking part in them.
///
/// # Errors
/// As [`read_header`].
pub fn snapshot<M: Mem>(mem: &M) -> Result<RegionSnapshot, RegionError> {
    let (g, epoch) = read_header(mem)?;
    Ok(RegionSnapshot {
        epoch,
        requests: view(mem, &g.requests).snapshot(),
        responses: view(mem, &g.responses).snapshot(),
    })
}
