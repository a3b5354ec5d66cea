//! The model-region manifest written by `scripts/run.sh` (layout in
//! `sis_platform::layout::model_region`): where the model file and the optional llama2.c
//! tokenizer sit in the region and how long they are. Pure logic, tested on the host.

use core::fmt;

use sis_platform::layout::model_region::{
    MANIFEST_MAGIC, MANIFEST_OFFSET, MANIFEST_SIZE, MANIFEST_VERSION,
};

/// A validated manifest: both ranges lie inside the region and below the manifest page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Offset of the model file from the region base.
    pub model_offset: usize,
    /// Length of the model file.
    pub model_len: usize,
    /// Offset and length of the llama2.c `tokenizer.bin`, if one was placed.
    pub tokenizer: Option<(usize, usize)>,
}

/// Why the region holds no usable manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestError {
    /// The region is too small to hold the manifest page.
    RegionTooSmall,
    /// No manifest magic: nothing was placed (`run.sh --no-model`).
    Missing,
    /// A manifest of another layout version.
    Version(u64),
    /// A file range is empty, overflows, or reaches into the manifest page.
    BadRange(&'static str),
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestError::RegionTooSmall => f.write_str("the model region is too small"),
            ManifestError::Missing => {
                f.write_str("no model in the partition (start with scripts/run.sh --model PATH)")
            }
            ManifestError::Version(v) => write!(f, "model manifest version {v} (expected 1)"),
            ManifestError::BadRange(what) => write!(f, "model manifest: bad {what} range"),
        }
    }
}

/// Parses the manifest of a model region of `region_len` bytes from its 64 bytes.
pub fn parse(
    region_len: usize,
    bytes: &[u8; MANIFEST_SIZE as usize],
) -> Result<Manifest, ManifestError> {
    if (region_len as u64) < MANIFEST_OFFSET + MANIFEST_SIZE {
        return Err(ManifestError::RegionTooSmall);
    }
    let w = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
        u64::from_le_bytes(b)
    };
    if w(0) != MANIFEST_MAGIC {
        return Err(ManifestError::Missing);
    }
    if w(1) != MANIFEST_VERSION {
        return Err(ManifestError::Version(w(1)));
    }
    let range = |off: u64, len: u64, what: &'static str| -> Result<(usize, usize), ManifestError> {
        match off.checked_add(len) {
            Some(end) if len > 0 && end <= MANIFEST_OFFSET => Ok((off as usize, len as usize)),
            _ => Err(ManifestError::BadRange(what)),
        }
    };
    let (model_offset, model_len) = range(w(2), w(3), "model")?;
    let tokenizer = match (w(4), w(5)) {
        (_, 0) => None,
        (off, len) => {
            let t = range(off, len, "tokenizer")?;
            if t.0 < model_offset + model_len && model_offset < t.0 + t.1 {
                return Err(ManifestError::BadRange("tokenizer (overlaps the model)"));
            }
            Some(t)
        }
    };
    Ok(Manifest {
        model_offset,
        model_len,
        tokenizer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGION: usize = 0x1000_0000;

    fn bytes(words: [u64; 8]) -> [u8; 64] {
        let mut b = [0u8; 64];
        for (i, w) in words.iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        b
    }

    #[test]
    fn model_and_tokenizer() {
        let m = parse(REGION, &bytes([MANIFEST_MAGIC, 1, 0, 1000, 4096, 50, 0, 0])).unwrap();
        assert_eq!(m.model_offset, 0);
        assert_eq!(m.model_len, 1000);
        assert_eq!(m.tokenizer, Some((4096, 50)));
        let m = parse(REGION, &bytes([MANIFEST_MAGIC, 1, 0, 7, 0, 0, 0, 0])).unwrap();
        assert_eq!(m.tokenizer, None);
    }

    #[test]
    fn rejects_missing_and_bad_manifests() {
        assert_eq!(parse(REGION, &[0; 64]), Err(ManifestError::Missing));
        assert_eq!(
            parse(REGION, &bytes([MANIFEST_MAGIC, 2, 0, 7, 0, 0, 0, 0])),
            Err(ManifestError::Version(2))
        );
        assert_eq!(
            parse(REGION, &bytes([MANIFEST_MAGIC, 1, 0, 0, 0, 0, 0, 0])),
            Err(ManifestError::BadRange("model"))
        );
        // Reaching into the manifest page, and offset + length overflowing.
        assert!(parse(
            REGION,
            &bytes([MANIFEST_MAGIC, 1, 0, MANIFEST_OFFSET + 1, 0, 0, 0, 0])
        )
        .is_err());
        assert!(parse(REGION, &bytes([MANIFEST_MAGIC, 1, u64::MAX, 2, 0, 0, 0, 0])).is_err());
        assert!(parse(REGION, &bytes([MANIFEST_MAGIC, 1, 0, 100, 50, 10, 0, 0])).is_err());
        assert_eq!(
            parse(4096, &bytes([MANIFEST_MAGIC, 1, 0, 7, 0, 0, 0, 0])),
            Err(ManifestError::RegionTooSmall)
        );
        // The largest model that fits ends exactly at the manifest page.
        assert!(parse(
            REGION,
            &bytes([MANIFEST_MAGIC, 1, 0, MANIFEST_OFFSET, 0, 0, 0, 0])
        )
        .is_ok());
    }
}
