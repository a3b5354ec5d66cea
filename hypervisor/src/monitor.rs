//! The monitor console (`hv> `): line input and command parsing. Execution lives with the VM
//! lifecycle code; parsing is plain logic, tested on the host.

use core::fmt;
use sis_platform::partition::{vm_by_name, VmId, PARTITIONS};

use crate::console::Target;

/// Longest monitor command line.
pub const LINE_MAX: usize = 80;
/// The prompt.
pub const PROMPT: &str = "hv> ";

/// A parsed monitor command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// List the commands.
    Help,
    /// Per-VM state and counters.
    Vms,
    /// Stop a VM.
    Stop(VmId),
    /// Start a stopped VM from its pristine image.
    Start(VmId),
    /// Stop then start a VM.
    Restart(VmId),
    /// Move the console focus.
    Switch(Target),
    /// Shared-ring state and doorbell counters.
    Ring,
    /// The newest audit records.
    Audit,
}

/// The command table: name, argument, description.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    ("help", "", "list monitor commands"),
    (
        "vms",
        "",
        "VM state, cores, RAM, exits by cause, IRQs injected",
    ),
    ("stop", "<vm>", "stop a VM"),
    (
        "start",
        "<vm>",
        "start a stopped VM from its pristine image",
    ),
    (
        "restart",
        "<vm>",
        "stop and start a VM from its pristine image",
    ),
    (
        "switch",
        "<vm|hv>",
        "send console input to a VM (or the monitor)",
    ),
    (
        "ring",
        "",
        "shared-ring heads, tails and counters; doorbells per VM",
    ),
    (
        "audit",
        "",
        "the newest audit records and the log's counters",
    ),
];

/// Why a line was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError<'a> {
    /// Not a monitor command.
    Unknown(&'a str),
    /// The command needs a VM name.
    MissingArg(&'static str),
    /// No VM has that name.
    NoSuchVm(&'a str),
    /// Extra words after the command.
    TooManyArgs(&'static str),
}

impl fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Unknown(w) => write!(f, "unknown command '{w}' (try 'help')"),
            ParseError::MissingArg(c) => write!(f, "usage: {c} <vm>"),
            ParseError::TooManyArgs(c) => write!(f, "{c}: too many arguments"),
            ParseError::NoSuchVm(n) => {
                write!(f, "no VM named '{n}' (VMs:")?;
                for vm in PARTITIONS.iter() {
                    write!(f, " {}", vm.name)?;
                }
                f.write_str(")")
            }
        }
    }
}

/// Parses one line. `Ok(None)` for an empty line.
pub fn parse(line: &str) -> Result<Option<Command>, ParseError<'_>> {
    let mut words = line.split_ascii_whitespace();
    let Some(cmd) = words.next() else {
        return Ok(None);
    };
    let arg = words.next();
    let (name, takes_arg) = match COMMANDS.iter().find(|c| c.0 == cmd) {
        Some(c) => (c.0, !c.1.is_empty()),
        None => return Err(ParseError::Unknown(cmd)),
    };
    if words.next().is_some() || (!takes_arg && arg.is_some()) {
        return Err(ParseError::TooManyArgs(name));
    }
    if !takes_arg {
        return Ok(Some(match name {
            "help" => Command::Help,
            "ring" => Command::Ring,
            "audit" => Command::Audit,
            _ => Command::Vms,
        }));
    }
    let arg = arg.ok_or(ParseError::MissingArg(name))?;
    if name == "switch" && matches!(arg, "hv" | "monitor") {
        return Ok(Some(Command::Switch(Target::Monitor)));
    }
    let vm = vm_by_name(arg).ok_or(ParseError::NoSuchVm(arg))?;
    Ok(Some(match name {
        "stop" => Command::Stop(vm),
        "start" => Command::Start(vm),
        "restart" => Command::Restart(vm),
        _ => Command::Switch(Target::Vm(vm)),
    }))
}

/// Per-core counters as `0=N 1=N ...` (a `vms` line).
pub struct PerCore<'a>(pub &'a [u64]);

impl fmt::Display for PerCore<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (core, n) in self.0.iter().enumerate() {
            if core > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{core}={n}")?;
        }
        Ok(())
    }
}

/// A line being typed at the monitor.
pub struct LineEditor {
    buf: [u8; LINE_MAX],
    len: usize,
    overflowed: bool,
}

/// What one typed byte did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    /// Echo this byte.
    Echo(u8),
    /// Erase one character on screen.
    Erase,
    /// A line is complete: take it with [`LineEditor::line`].
    Submit,
    /// The line was too long and was discarded.
    Overflow,
    /// Nothing to show.
    None,
}

impl Default for LineEditor {
    fn default() -> Self {
        Self::new()
    }
}

impl LineEditor {
    /// An empty line.
    pub const fn new() -> Self {
        LineEditor {
            buf: [0; LINE_MAX],
            len: 0,
            overflowed: false,
        }
    }

    /// Feeds one input byte.
    pub fn feed(&mut self, b: u8) -> Edit {
        match b {
            b'\r' | b'\n' => {
                if self.overflowed {
                    self.overflowed = false;
                    self.len = 0;
                    return Edit::Overflow;
                }
                Edit::Submit
            }
            0x08 | 0x7F => {
                if self.len > 0 {
                    self.len -= 1;
                    Edit::Erase
                } else {
                    Edit::None
                }
            }
            0x20..=0x7E => {
                if self.len == LINE_MAX {
                    self.overflowed = true;
                    return Edit::None;
                }
                self.buf[self.len] = b;
                self.len += 1;
                Edit::Echo(b)
            }
            _ => Edit::None,
        }
    }

    /// Takes the submitted line, leaving the editor empty.
    pub fn take(&mut self, out: &mut [u8; LINE_MAX]) -> usize {
        let n = self.len;
        out[..n].copy_from_slice(&self.buf[..n]);
        self.len = 0;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    #[test]
    fn parses_commands() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("  vms "), Ok(Some(Command::Vms)));
        assert_eq!(parse("help"), Ok(Some(Command::Help)));
        assert_eq!(parse("stop llm"), Ok(Some(Command::Stop(1))));
        assert_eq!(parse("restart ctl"), Ok(Some(Command::Restart(0))));
        assert_eq!(parse("start ctl"), Ok(Some(Command::Start(0))));
        assert_eq!(
            parse("switch llm"),
            Ok(Some(Command::Switch(Target::Vm(1))))
        );
        assert_eq!(
            parse("switch hv"),
            Ok(Some(Command::Switch(Target::Monitor)))
        );
    }

    #[test]
    fn bad_lines_say_why() {
        assert_eq!(
            parse("frob").unwrap_err().to_string(),
            "unknown command 'frob' (try 'help')"
        );
        assert_eq!(parse("stop").unwrap_err().to_string(), "usage: stop <vm>");
        assert_eq!(
            parse("stop x").unwrap_err().to_string(),
            "no VM named 'x' (VMs: ctl llm)"
        );
        assert_eq!(
            parse("vms now").unwrap_err().to_string(),
            "vms: too many arguments"
        );
        assert_eq!(
            parse("stop ctl llm").unwrap_err().to_string(),
            "stop: too many arguments"
        );
    }

    #[test]
    fn per_core_counters() {
        assert_eq!(PerCore(&[3, 0, 17]).to_string(), "0=3 1=0 2=17");
        assert_eq!(PerCore(&[]).to_string(), "");
    }

    #[test]
    fn line_editor() {
        let mut e = LineEditor::new();
        for b in b"vmx" {
            assert_eq!(e.feed(*b), Edit::Echo(*b));
        }
        assert_eq!(e.feed(0x7F), Edit::Erase);
        assert_eq!(e.feed(b's'), Edit::Echo(b's'));
        assert_eq!(e.feed(0x03), Edit::None);
        assert_eq!(e.feed(b'\r'), Edit::Submit);
        let mut out = [0; LINE_MAX];
        let n = e.take(&mut out);
        assert_eq!(&out[..n], b"vms");
        assert_eq!(e.feed(0x7F), Edit::None);
        for _ in 0..LINE_MAX + 5 {
            e.feed(b'a');
        }
        assert_eq!(e.feed(b'\r'), Edit::Overflow);
        assert_eq!(e.feed(b'\r'), Edit::Submit);
        assert_eq!(e.take(&mut out), 0);
    }
}
