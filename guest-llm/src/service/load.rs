//! Loading the model and setting up the default server. Audited as op 1 (load).

use alloc::format;
use alloc::string::String;
use core::fmt::Write;

use guest_rt::timer;
use shared_ring::audit::{AuditEntry, Op};
use sis_platform::BootInfo;
use sis_sched::ns_to_cycles;

use super::{audit, ServerSettings, Service, DEFAULT_BUDGET_NS, DEFAULT_PERIOD_NS, DEFAULT_SERVER};
use crate::model;

impl Service {
    /// Loads the model (see [`model::load`]) and sets up the default server: with
    /// `wcet_cycles` its budget, otherwise [`DEFAULT_BUDGET_NS`] for a new server.
    ///
    /// # Errors
    /// The loader's or the scheduler's message; the model stays as it was.
    pub fn load(
        &self,
        info: &BootInfo,
        wcet_cycles: Option<u64>,
        out: &mut dyn Write,
    ) -> Result<(), String> {
        let current = self.server_settings(DEFAULT_SERVER);
        let wcet = match (wcet_cycles, current) {
            (Some(w), _) => w,
            (None, Some(c)) => c.wcet_cycles,
            (None, None) => ns_to_cycles(DEFAULT_BUDGET_NS, timer::frequency()).unwrap_or(0),
        };
        let period = current.map_or(DEFAULT_PERIOD_NS, |c| c.period_ns);
        let entry = AuditEntry {
            op: Op::Load as u16,
            wcet_cycles: wcet,
            period_ns: period,
            ..AuditEntry::default()
        };
        let res = model::load(info, out).and_then(|_| {
            let settings = ServerSettings {
                wcet_cycles: wcet,
                period_ns: period,
                max_tokens: current.map_or(0, |c| c.max_tokens),
            };
            if current == Some(settings) {
                return Ok(());
            }
            self.apply_settings(DEFAULT_SERVER, settings)
                .map_err(|e| format!("server '{DEFAULT_SERVER}': {e}"))
        });
        audit::outcome(entry, res.is_ok());
        res
    }
}
