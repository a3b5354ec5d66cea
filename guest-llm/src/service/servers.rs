//! Named servers (CBS reservations): their settings, admission of a new one, reconfiguration,
//! removal. Every change is audited as op 2 (budget).

use alloc::format;
use alloc::string::String;

use shared_ring::audit::{AuditEntry, Op};
use sis_sched::{ServerConfig, ServerId};

use super::args::MAX_NAME;
use super::background::Periodic;
use super::state::{cycles_ns, State};
use super::{audit, now_ns, Service, DEFAULT_SERVER};

/// A named server.
pub(super) struct Server {
    pub(super) name: heapless::String<MAX_NAME>,
    pub(super) id: ServerId,
    pub(super) wcet_cycles: u64,
    pub(super) period_ns: u64,
    pub(super) max_tokens: u32,
    /// Its background source, if one was started.
    pub(super) periodic: Option<Periodic>,
    /// Background jobs finished / failed.
    pub(super) bg_done: u32,
    pub(super) bg_failed: u32,
}

/// Settings of a server as the shell shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerSettings {
    /// WCET (budget) in timer cycles.
    pub wcet_cycles: u64,
    /// Period in ns.
    pub period_ns: u64,
    /// Token quota per period (0 = unlimited).
    pub max_tokens: u32,
}

impl State {
    /// The server called `name`.
    pub(super) fn server_mut(&mut self, name: &str) -> Option<&mut Server> {
        self.servers.iter_mut().find(|s| s.name == name)
    }
}

impl Service {
    /// Settings of server `name`.
    pub fn server_settings(&self, name: &str) -> Option<ServerSettings> {
        let mut st = self.state.lock();
        st.server_mut(name).map(|s| ServerSettings {
            wcet_cycles: s.wcet_cycles,
            period_ns: s.period_ns,
            max_tokens: s.max_tokens,
        })
    }

    /// Admits a new server or reconfigures an existing one (audited as op 2, budget).
    ///
    /// # Errors
    /// The scheduler's reason (admission bound, invalid settings), nothing changed.
    pub fn configure_server(&self, name: &str, s: ServerSettings) -> Result<(), String> {
        let entry = AuditEntry {
            op: Op::Budget as u16,
            wcet_cycles: s.wcet_cycles,
            period_ns: s.period_ns,
            tokens: s.max_tokens,
            ..AuditEntry::default()
        };
        let res = self.apply_settings(name, s);
        audit::outcome(entry, res.is_ok());
        res
    }

    /// [`Service::configure_server`] without the audit record (a load audits itself).
    pub(super) fn apply_settings(&self, name: &str, s: ServerSettings) -> Result<(), String> {
        let budget_ns = cycles_ns(s.wcet_cycles)?;
        let cfg = ServerConfig::new(budget_ns, s.period_ns, s.max_tokens);
        cfg.validate().map_err(|e| format!("{e}"))?;
        let now = now_ns();
        let mut guard = self.state.lock();
        let st = &mut *guard;
        if let Some(srv) = st.servers.iter_mut().find(|srv| srv.name == name) {
            st.sched
                .reconfigure(srv.id, cfg, now)
                .map_err(|e| format!("{e}"))?;
            srv.wcet_cycles = s.wcet_cycles;
            srv.period_ns = s.period_ns;
            srv.max_tokens = s.max_tokens;
            return Ok(());
        }
        let name =
            heapless::String::try_from(name).map_err(|_| String::from("server name too long"))?;
        let id = st.sched.add_server(cfg, now).map_err(|e| format!("{e}"))?;
        st.servers.push(Server {
            name,
            id,
            wcet_cycles: s.wcet_cycles,
            period_ns: s.period_ns,
            max_tokens: s.max_tokens,
            periodic: None,
            bg_done: 0,
            bg_failed: 0,
        });
        Ok(())
    }

    /// Removes server `name` (refused while it has jobs or a background source).
    ///
    /// # Errors
    /// Why it stays.
    pub fn remove_server(&self, name: &str) -> Result<(), String> {
        if name == DEFAULT_SERVER {
            return Err(format!("the '{DEFAULT_SERVER}' server cannot be removed"));
        }
        let now = now_ns();
        let mut guard = self.state.lock();
        let st = &mut *guard;
        let Some(pos) = st.servers.iter().position(|s| s.name == name) else {
            return Err(format!("no server '{name}'"));
        };
        if st.servers[pos]
            .periodic
            .as_ref()
            .is_some_and(|p| p.released < p.total)
        {
            return Err(format!(
                "server '{name}' still has a background source running"
            ));
        }
        st.sched
            .remove_server(st.servers[pos].id, now)
            .map_err(|e| format!("{e}"))?;
        st.servers.remove(pos);
        Ok(())
    }
}
