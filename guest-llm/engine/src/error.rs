//! The engine's error type: every failure is a value with a readable message.

use alloc::string::String;
use core::fmt;

/// Result alias used throughout the engine.
pub type Result<T> = core::result::Result<T, Error>;

/// Why an engine operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The file is malformed: truncated, wrong magic, out-of-range offset, bad shape, ...
    Format(String),
    /// The file is well formed but uses something this engine does not implement.
    Unsupported(String),
    /// A caller passed an invalid argument (bad token id, bad sampling parameter, ...).
    InvalidArgument(String),
    /// The KV cache has no room for another position.
    ContextFull {
        /// Capacity of the context in tokens.
        capacity: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Format(m) => write!(f, "malformed model file: {m}"),
            Error::Unsupported(m) => write!(f, "unsupported: {m}"),
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::ContextFull { capacity } => {
                write!(f, "context full ({capacity} tokens)")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// Builds an [`Error::Format`] from format arguments.
macro_rules! format_err {
    ($($arg:tt)*) => { $crate::error::Error::Format(alloc::format!($($arg)*)) };
}
pub(crate) use format_err;
