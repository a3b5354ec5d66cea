//! Cancelling a job (audited as op 5): it leaves the scheduler and its sink hears
//! [`JobError::Cancelled`].

use alloc::format;
use alloc::string::String;

use shared_ring::audit::{AuditEntry, Op, STATUS_OK};

use super::request::{JobError, ReplySink};
use super::{audit, now_ns, Service};

impl Service {
    /// Cancels the job with `tag` that `sink` submitted.
    ///
    /// # Errors
    /// No such job (never admitted, or already over).
    pub fn cancel(&self, tag: u64, sink: &'static dyn ReplySink) -> Result<(), String> {
        let now = now_ns();
        let job = {
            let mut guard = self.state.lock();
            let st = &mut *guard;
            let pos = st
                .jobs
                .iter()
                .position(|j| j.tag == tag && core::ptr::addr_eq(j.sink, sink));
            let job = pos.map(|i| st.jobs.swap_remove(i));
            if let Some(j) = &job {
                let _ = st.sched.cancel(j.server, j.id, now);
            }
            job
        };
        let Some(job) = job else {
            return Err(format!("no job {tag}"));
        };
        audit::record(AuditEntry {
            op: Op::Cancel as u16,
            status: STATUS_OK,
            prompt_len: job.prompt_tokens,
            tokens: job.session.generated() as u32,
            extra: job.id.0,
            ..AuditEntry::default()
        });
        let (sink, tag) = (job.sink, job.tag);
        self.release(job, false);
        sink.failed(tag, &JobError::Cancelled);
        Ok(())
    }
}
