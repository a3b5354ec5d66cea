//! Token shell commands of the `ctl>` shell: show and rotate the control-plane secrets and
//! print embedded-rights tokens (seed formats `EMBED TOKEN: 0x...`).
//!
//! - `ctlkey [rotate|<value>]`: show the control key, or replace it (revokes every embedded
//!   token issued before);
//! - `ctladmin [show|<value>]`, `ctlsubmit [show|<value>]`: rotate the legacy ADMIN / SUBMIT
//!   token to a fresh random value (no argument), show it, or set it;
//! - `ctlembed admin|submit|all`: the embedded-rights token for those rights.
//!
//! Fresh values come from virtio-rng; a value that fails validation is refused and nothing
//! changes.

use guest_rt::shell::{parse_u64, Command, Invocation};
use sis_frame::auth::{Authenticator, KeyError, Rights};

use crate::hostctl;
use crate::rng;

/// The token commands.
pub static COMMANDS: [Command; 4] = [
    Command {
        name: "ctlkey",
        help: "ctlkey [rotate|<value>]: show or replace the control key (embedded tokens)",
        run: ctlkey,
    },
    Command {
        name: "ctladmin",
        help: "ctladmin [show|<value>]: rotate (default), show or set the legacy ADMIN token",
        run: ctladmin,
    },
    Command {
        name: "ctlsubmit",
        help: "ctlsubmit [show|<value>]: rotate (default), show or set the legacy SUBMIT token",
        run: ctlsubmit,
    },
    Command {
        name: "ctlembed",
        help: "ctlembed admin|submit|all: print an embedded-rights token",
        run: ctlembed,
    },
];

#[derive(Clone, Copy)]
enum Which {
    Key,
    Admin,
    Submit,
}

impl Which {
    fn label(self) -> &'static str {
        match self {
            Which::Key => "CTL KEY",
            Which::Admin => "ADMIN TOKEN",
            Which::Submit => "SUBMIT TOKEN",
        }
    }

    fn get(self, a: &Authenticator) -> u64 {
        match self {
            Which::Key => a.ctl_key(),
            Which::Admin => a.admin_token(),
            Which::Submit => a.submit_token(),
        }
    }

    fn set(self, a: &mut Authenticator, v: u64) -> Result<(), KeyError> {
        match self {
            Which::Key => a.rotate_ctl_key(v),
            Which::Admin => a.rotate_admin(v),
            Which::Submit => a.rotate_submit(v),
        }
    }
}

/// What a secret command was asked to do.
enum Action {
    Show,
    Random,
    Set(u64),
}

fn secret_cmd(inv: &mut Invocation<'_, '_>, which: Which, default: Action) {
    let name = inv.args[0];
    let action = match inv.args.get(1..) {
        Some([]) | None => default,
        Some(["show"]) => Action::Show,
        Some(["rotate"]) => Action::Random,
        Some([v]) => match parse_u64(v) {
            Some(v) => Action::Set(v),
            None => {
                let _ = writeln!(inv.out, "{name}: bad value '{v}' (0x-hex or decimal)");
                return;
            }
        },
        Some(_) => {
            let _ = writeln!(inv.out, "usage: {name} [show|rotate|<value>]");
            return;
        }
    };
    let value = match action {
        Action::Show => None,
        Action::Set(v) => Some(v),
        Action::Random => match rng::u64() {
            Ok(v) => Some(v),
            Err(e) => {
                let _ = writeln!(inv.out, "{name}: {e}: nothing changed");
                return;
            }
        },
    };
    hostctl::with(|h| {
        let Some(a) = h.control_mut().auth_mut() else {
            let _ = writeln!(inv.out, "{name}: no secrets (no virtio-rng at boot)");
            return;
        };
        if let Some(v) = value {
            if let Err(e) = which.set(a, v) {
                let _ = writeln!(inv.out, "{name}: refused: {e}; nothing changed");
                return;
            }
        }
        let _ = writeln!(inv.out, "{}: {:#018x}", which.label(), which.get(a));
    });
}

fn ctlkey(inv: &mut Invocation<'_, '_>) {
    secret_cmd(inv, Which::Key, Action::Show);
}

fn ctladmin(inv: &mut Invocation<'_, '_>) {
    secret_cmd(inv, Which::Admin, Action::Random);
}

fn ctlsubmit(inv: &mut Invocation<'_, '_>) {
    secret_cmd(inv, Which::Submit, Action::Random);
}

fn ctlembed(inv: &mut Invocation<'_, '_>) {
    let rights = match inv.args.get(1..) {
        Some(["admin"]) => Rights::ADMIN,
        Some(["submit"]) => Rights::SUBMIT,
        Some(["all"]) => Rights::ALL,
        _ => {
            let _ = writeln!(inv.out, "usage: ctlembed admin|submit|all");
            return;
        }
    };
    hostctl::with(|h| {
        let Some(a) = h.control_mut().auth_mut() else {
            let _ = writeln!(inv.out, "ctlembed: no secrets (no virtio-rng at boot)");
            return;
        };
        match a.embedded_token(rights) {
            Ok(t) => {
                let _ = writeln!(inv.out, "EMBED TOKEN: {t:#018x}");
            }
            Err(e) => {
                let _ = writeln!(inv.out, "ctlembed: {e}");
            }
        }
    });
}
