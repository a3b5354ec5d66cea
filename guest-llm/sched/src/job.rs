//! Jobs: inference requests queued on a server and executed in bounded steps.

/// Identifier of a job, unique within one scheduler and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

/// What a job asks for at submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobSpec {
    /// Most tokens the job may produce (>= 1); this is what the token quota reserves.
    pub max_tokens: u32,
}

/// A queued job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    /// Its identifier.
    pub id: JobId,
    /// Tokens asked for at submission.
    pub max_tokens: u32,
    /// Submission time, ns.
    pub arrival_ns: u64,
    /// Deadline it was released with: the server's scheduling deadline when the job became the
    /// head of the queue (`None` while it waits behind another job).
    pub deadline_ns: Option<u64>,
    /// Tokens reported so far.
    pub tokens: u32,
    /// Execution time charged so far, ns.
    pub consumed_ns: u64,
    /// Steps (charges) so far.
    pub steps: u32,
}

/// The result of completing a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// The completed job.
    pub job: JobId,
    /// Submission time, ns.
    pub arrival_ns: u64,
    /// Deadline it was released with, ns.
    pub deadline_ns: u64,
    /// Completion time, ns.
    pub finish_ns: u64,
    /// `finish_ns - arrival_ns`.
    pub response_ns: u64,
    /// `finish_ns > deadline_ns`.
    pub missed: bool,
    /// `finish_ns - deadline_ns` when missed, else 0.
    pub lateness_ns: u64,
    /// Tokens reported.
    pub tokens: u32,
    /// Execution time charged, ns.
    pub consumed_ns: u64,
    /// Steps charged.
    pub steps: u32,
}
