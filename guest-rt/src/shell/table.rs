//! Command tables and dispatch of one submitted line.
//!
//! A guest builds its shell from several `&'static [Command]` tables (the common ones from
//! [`crate::commands`] plus its own); names are looked up in table order, so the first table
//! wins if two define the same name.

use core::fmt::Write;

use super::args::{self, split};

/// What a command gets when it runs.
pub struct Invocation<'a, 'b> {
    /// The words of the line; `args[0]` is the command name.
    pub args: &'a [&'a str],
    /// Where the command prints.
    pub out: &'b mut dyn Write,
    /// Every command of the shell (for `help`).
    pub commands: &'a Commands,
}

/// One shell command.
pub struct Command {
    /// The word that runs it.
    pub name: &'static str,
    /// One line of help text.
    pub help: &'static str,
    /// The code; prints its own result and errors.
    pub run: fn(&mut Invocation<'_, '_>),
}

/// The set of tables a shell dispatches to.
pub struct Commands {
    tables: &'static [&'static [Command]],
}

impl Commands {
    /// A shell over `tables`, searched in order.
    pub const fn new(tables: &'static [&'static [Command]]) -> Self {
        Commands { tables }
    }

    /// Every command, in table order.
    pub fn iter(&self) -> impl Iterator<Item = &'static Command> + '_ {
        self.tables.iter().flat_map(|t| t.iter())
    }

    /// The first command called `name`.
    pub fn find(&self, name: &str) -> Option<&'static Command> {
        self.iter().find(|c| c.name == name)
    }

    /// Prints one line `  name  - description` per command (shadowed duplicates left out).
    pub fn print_help(&self, out: &mut dyn Write) {
        for c in self
            .iter()
            .filter(|c| self.find(c.name).is_some_and(|f| core::ptr::eq(f, *c)))
        {
            let _ = writeln!(out, "  {}  - {}", c.name, c.help);
        }
    }

    /// Runs one submitted line. Returns what happened (for counters and tests).
    pub fn execute(&self, line: &str, out: &mut dyn Write) -> Outcome {
        let words = match split(line) {
            Ok(w) => w,
            Err(e) => {
                let _ = writeln!(out, "error: {e}");
                return Outcome::BadArgs(e);
            }
        };
        let args = words.as_slice();
        let Some(&name) = args.first() else {
            return Outcome::Empty;
        };
        match self.find(name) {
            Some(cmd) => {
                (cmd.run)(&mut Invocation {
                    args,
                    out,
                    commands: self,
                });
                Outcome::Ran
            }
            None => {
                let _ = writeln!(out, "unknown command: {name} (try 'help')");
                Outcome::Unknown
            }
        }
    }
}

/// Result of [`Commands::execute`].
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Blank line.
    Empty,
    /// A command ran.
    Ran,
    /// No command has that name.
    Unknown,
    /// The line could not be split into words.
    BadArgs(args::ArgError),
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::String;

    fn echo(inv: &mut Invocation<'_, '_>) {
        let _ = writeln!(inv.out, "{}", inv.args[1..].join("|"));
    }
    fn help(inv: &mut Invocation<'_, '_>) {
        inv.commands.print_help(inv.out);
    }
    fn shadowed(inv: &mut Invocation<'_, '_>) {
        let _ = writeln!(inv.out, "second table");
    }

    static FIRST: [Command; 2] = [
        Command {
            name: "help",
            help: "list commands",
            run: help,
        },
        Command {
            name: "echo",
            help: "print the arguments",
            run: echo,
        },
    ];
    static SECOND: [Command; 1] = [Command {
        name: "echo",
        help: "shadowed",
        run: shadowed,
    }];
    static SHELL: Commands = Commands::new(&[&FIRST, &SECOND]);

    #[test]
    fn runs_command_with_quoted_args() {
        let mut out = String::new();
        assert_eq!(SHELL.execute(r#"echo a "b c""#, &mut out), Outcome::Ran);
        assert_eq!(out, "a|b c\n");
    }

    #[test]
    fn first_table_wins() {
        let mut out = String::new();
        SHELL.execute("echo", &mut out);
        assert_eq!(out, "\n");
    }

    #[test]
    fn unknown_command_message() {
        let mut out = String::new();
        assert_eq!(SHELL.execute("frobnicate now", &mut out), Outcome::Unknown);
        assert_eq!(out, "unknown command: frobnicate (try 'help')\n");
    }

    #[test]
    fn help_lists_every_command_once_per_line() {
        let mut out = String::new();
        SHELL.execute("help", &mut out);
        assert_eq!(
            out,
            "  help  - list commands\n  echo  - print the arguments\n"
        );
    }

    #[test]
    fn blank_and_bad_lines() {
        let mut out = String::new();
        assert_eq!(SHELL.execute("   ", &mut out), Outcome::Empty);
        assert_eq!(out, "");
        assert_eq!(
            SHELL.execute("echo \"open", &mut out),
            Outcome::BadArgs(args::ArgError::UnterminatedQuote)
        );
        assert_eq!(out, "error: unterminated quote\n");
    }
}
