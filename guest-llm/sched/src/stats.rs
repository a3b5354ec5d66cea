//! The sample window the scheduler keeps its response and jitter samples in (the shared
//! nearest-rank helper of `sis-stats`).

/// Number of samples kept per window.
pub const SAMPLE_WINDOW: usize = 256;

/// Percentiles of a sample window (ns).
pub type Percentiles = sis_stats::Percentiles<u64>;

/// The last [`SAMPLE_WINDOW`] samples (older ones are overwritten, and counted).
pub type SampleRing = sis_stats::Window<u64, SAMPLE_WINDOW>;
