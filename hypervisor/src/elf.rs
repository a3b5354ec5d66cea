//! A minimal ELF64 reader for the embedded guest images: validates the header and yields the
//! loadable segments. The image is trusted build output, but it is still checked, so a broken
//! build gives a clear error instead of a wild copy.

/// One `PT_LOAD` segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Guest-physical load address.
    pub addr: u64,
    /// Offset of the file bytes in the image.
    pub offset: usize,
    /// Bytes present in the file.
    pub filesz: usize,
    /// Bytes in memory (the rest is zeroed).
    pub memsz: usize,
}

/// Why an image was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Not an ELF file, or not 64-bit little-endian.
    BadMagic,
    /// Not an AArch64 executable.
    WrongMachine,
    /// A header or segment lies outside the file.
    Truncated,
    /// A segment lies outside the allowed load window.
    OutOfRange,
    /// More segments than the loader supports.
    TooManySegments,
}

/// Most `PT_LOAD` segments accepted.
pub const MAX_SEGMENTS: usize = 8;

const PT_LOAD: u32 = 1;
const EM_AARCH64: u16 = 183;
const ET_EXEC: u16 = 2;

fn u16_at(b: &[u8], off: usize) -> Result<u16, ElfError> {
    let s = b.get(off..off + 2).ok_or(ElfError::Truncated)?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], off: usize) -> Result<u32, ElfError> {
    let s = b.get(off..off + 4).ok_or(ElfError::Truncated)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], off: usize) -> Result<u64, ElfError> {
    let s = b.get(off..off + 8).ok_or(ElfError::Truncated)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_le_bytes(a))
}

/// A checked ELF image.
#[derive(Debug)]
pub struct Image {
    /// Entry point (guest-physical).
    pub entry: u64,
    segments: [Segment; MAX_SEGMENTS],
    count: usize,
}

impl Image {
    /// Parses `bytes`, requiring every segment to lie in `[lo, hi)`.
    pub fn parse(bytes: &[u8], lo: u64, hi: u64) -> Result<Image, ElfError> {
        if bytes.get(0..4) != Some(b"\x7fELF".as_slice()) || bytes.get(4) != Some(&2) {
            return Err(ElfError::BadMagic);
        }
        if bytes.get(5) != Some(&1) {
            return Err(ElfError::BadMagic);
        }
        if u16_at(bytes, 16)? != ET_EXEC || u16_at(bytes, 18)? != EM_AARCH64 {
            return Err(ElfError::WrongMachine);
        }
        let entry = u64_at(bytes, 24)?;
        let phoff = usize::try_from(u64_at(bytes, 32)?).map_err(|_| ElfError::Truncated)?;
        let phentsize = usize::from(u16_at(bytes, 54)?);
        let phnum = usize::from(u16_at(bytes, 56)?);
        if phentsize < 56 {
            return Err(ElfError::Truncated);
        }
        let mut img = Image {
            entry,
            segments: [Segment {
                addr: 0,
                offset: 0,
                filesz: 0,
                memsz: 0,
            }; MAX_SEGMENTS],
            count: 0,
        };
        for i in 0..phnum {
            let ph = phoff
                .checked_add(i * phentsize)
                .ok_or(ElfError::Truncated)?;
            if u32_at(bytes, ph)? != PT_LOAD {
                continue;
            }
            let offset = u64_at(bytes, ph + 8)?;
            let paddr = u64_at(bytes, ph + 24)?;
            let filesz = u64_at(bytes, ph + 32)?;
            let memsz = u64_at(bytes, ph + 40)?;
            if memsz == 0 {
                continue;
            }
            let end = offset.checked_add(filesz).ok_or(ElfError::Truncated)?;
            if end > bytes.len() as u64 || filesz > memsz {
                return Err(ElfError::Truncated);
            }
            let top = paddr.checked_add(memsz).ok_or(ElfError::OutOfRange)?;
            if paddr < lo || top > hi {
                return Err(ElfError::OutOfRange);
            }
            if img.count == MAX_SEGMENTS {
                return Err(ElfError::TooManySegments);
            }
            img.segments[img.count] = Segment {
                addr: paddr,
                offset: offset as usize,
                filesz: filesz as usize,
                memsz: memsz as usize,
            };
            img.count += 1;
        }
        if entry < lo || entry >= hi {
            return Err(ElfError::OutOfRange);
        }
        Ok(img)
    }

    /// The loadable segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments[..self.count]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    /// Builds a one-segment AArch64 executable.
    fn elf(entry: u64, paddr: u64, data: &[u8], memsz: u64) -> Vec<u8> {
        let mut b = std::vec![0u8; 64 + 56];
        b[0..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        b[18..20].copy_from_slice(&EM_AARCH64.to_le_bytes());
        b[24..32].copy_from_slice(&entry.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&1u16.to_le_bytes());
        let ph = 64;
        b[ph..ph + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        b[ph + 8..ph + 16].copy_from_slice(&120u64.to_le_bytes());
        b[ph + 24..ph + 32].copy_from_slice(&paddr.to_le_bytes());
        b[ph + 32..ph + 40].copy_from_slice(&(data.len() as u64).to_le_bytes());
        b[ph + 40..ph + 48].copy_from_slice(&memsz.to_le_bytes());
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn parses_a_segment() {
        let b = elf(0x4008_0000, 0x4008_0000, &[1, 2, 3], 16);
        let img = Image::parse(&b, 0x4000_0000, 0x4400_0000).unwrap();
        assert_eq!(img.entry, 0x4008_0000);
        assert_eq!(
            img.segments(),
            &[Segment {
                addr: 0x4008_0000,
                offset: 120,
                filesz: 3,
                memsz: 16
            }]
        );
    }

    #[test]
    fn rejects_bad_images() {
        let good = elf(0x4008_0000, 0x4008_0000, &[1, 2, 3], 16);
        let mut bad = good.clone();
        bad[0] = 0;
        assert_eq!(
            Image::parse(&bad, 0x4000_0000, 0x4400_0000).unwrap_err(),
            ElfError::BadMagic
        );
        let mut bad = good.clone();
        bad[18] = 62;
        assert_eq!(
            Image::parse(&bad, 0x4000_0000, 0x4400_0000).unwrap_err(),
            ElfError::WrongMachine
        );
        let bad = &good[..good.len() - 1];
        assert_eq!(
            Image::parse(bad, 0x4000_0000, 0x4400_0000).unwrap_err(),
            ElfError::Truncated
        );
        assert_eq!(
            Image::parse(&good, 0x4100_0000, 0x4400_0000).unwrap_err(),
            ElfError::OutOfRange
        );
        let huge = elf(0x4008_0000, 0x4008_0000, &[1], u64::MAX);
        assert_eq!(
            Image::parse(&huge, 0x4000_0000, 0x4400_0000).unwrap_err(),
            ElfError::OutOfRange
        );
        for n in 0..good.len() {
            // Any truncation is an error, never a panic.
            assert!(Image::parse(&good[..n], 0x4000_0000, 0x4400_0000).is_err());
        }
    }
}
