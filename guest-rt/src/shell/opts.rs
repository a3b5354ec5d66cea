//! Option parsing for shell commands: `--name value` options and `--name` switches among
//! positional words, e.g. `llminfer "hello" --max-tokens 8`.
//!
//! Only the options a command declares are accepted; an unknown option, a repeated one, an
//! option without its value or a value that is not a number (for [`Parsed::number`]) is an
//! error with a message naming the option.

use core::fmt;

use super::args::{parse_u64, MAX_ARGS};

/// What a command accepts.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// Options that take a value (`--max-tokens 8`).
    pub valued: &'static [&'static str],
    /// Switches without a value (`--verbose`).
    pub switches: &'static [&'static str],
}

/// Why the words of a command could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptError<'a> {
    /// An option the command does not have.
    Unknown(&'a str),
    /// A valued option at the end of the line.
    MissingValue(&'static str),
    /// The same option twice.
    Repeated(&'static str),
    /// More than [`MAX_ARGS`] positional words.
    TooMany,
    /// A value that is not a number.
    BadNumber {
        /// The option.
        opt: &'static str,
        /// What was given.
        value: &'a str,
    },
}

impl fmt::Display for OptError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptError::Unknown(o) => write!(f, "unknown option {o}"),
            OptError::MissingValue(o) => write!(f, "option {o} needs a value"),
            OptError::Repeated(o) => write!(f, "option {o} given twice"),
            OptError::TooMany => write!(f, "too many arguments (max {MAX_ARGS})"),
            OptError::BadNumber { opt, value } => {
                write!(f, "option {opt}: '{value}' is not a number")
            }
        }
    }
}

/// Most options one spec may declare (valued and switches together).
pub const MAX_OPTS: usize = 16;

/// The parsed words.
#[derive(Debug)]
pub struct Parsed<'a> {
    spec: Spec,
    positional: [&'a str; MAX_ARGS],
    npos: usize,
    values: [Option<&'a str>; MAX_OPTS],
    set: [bool; MAX_OPTS],
}

impl<'a> Parsed<'a> {
    /// Words that are not options, in order (the command name is not included).
    pub fn positional(&self) -> &[&'a str] {
        &self.positional[..self.npos]
    }

    /// The value of a valued option, if given.
    pub fn value(&self, name: &str) -> Option<&'a str> {
        let i = self.spec.valued.iter().position(|&v| v == name)?;
        self.values[i]
    }

    /// The value of a valued option as a number (0x-hex or decimal), if given.
    pub fn number(&self, name: &str) -> Result<Option<u64>, OptError<'a>> {
        let Some(i) = self.spec.valued.iter().position(|&v| v == name) else {
            return Ok(None);
        };
        match self.values[i] {
            None => Ok(None),
            Some(v) => parse_u64(v).map(Some).ok_or(OptError::BadNumber {
                opt: self.spec.valued[i],
                value: v,
            }),
        }
    }

    /// Whether a switch was given.
    pub fn switch(&self, name: &str) -> bool {
        self.spec
            .switches
            .iter()
            .position(|&s| s == name)
            .is_some_and(|i| self.set[self.spec.valued.len() + i])
    }
}

/// Parses `words` (without the command name) against `spec`. Words starting with `--` are
/// options; everything else is positional (so `-5` or `-` are positional values).
pub fn parse<'a>(words: &[&'a str], spec: Spec) -> Result<Parsed<'a>, OptError<'a>> {
    assert!(
        spec.valued.len() + spec.switches.len() <= MAX_OPTS,
        "too many options in a spec"
    );
    let mut p = Parsed {
        spec,
        positional: [""; MAX_ARGS],
        npos: 0,
        values: [None; MAX_OPTS],
        set: [false; MAX_OPTS],
    };
    let mut it = words.iter();
    while let Some(&w) = it.next() {
        if !w.starts_with("--") {
            if p.npos == MAX_ARGS {
                return Err(OptError::TooMany);
            }
            p.positional[p.npos] = w;
            p.npos += 1;
            continue;
        }
        if let Some(i) = spec.valued.iter().position(|&v| v == w) {
            let name = spec.valued[i];
            if p.set[i] {
                return Err(OptError::Repeated(name));
            }
            let value = it.next().ok_or(OptError::MissingValue(name))?;
            p.values[i] = Some(value);
            p.set[i] = true;
        } else if let Some(j) = spec.switches.iter().position(|&s| s == w) {
            let i = spec.valued.len() + j;
            if p.set[i] {
                return Err(OptError::Repeated(spec.switches[j]));
            }
            p.set[i] = true;
        } else {
            return Err(OptError::Unknown(w));
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::args::split;

    const INFER: Spec = Spec {
        valued: &["--max-tokens", "--chunk"],
        switches: &["--raw"],
    };

    #[test]
    fn positionals_values_and_switches() {
        let line = split(r#"llminfer "hello world" --max-tokens 0x10 --raw"#).unwrap();
        let p = parse(&line.as_slice()[1..], INFER).unwrap();
        assert_eq!(p.positional(), ["hello world"]);
        assert_eq!(p.value("--max-tokens"), Some("0x10"));
        assert_eq!(p.number("--max-tokens"), Ok(Some(16)));
        assert_eq!(p.number("--chunk"), Ok(None));
        assert!(p.switch("--raw"));
        assert!(!p.switch("--other"));
    }

    #[test]
    fn value_may_look_like_anything() {
        let p = parse(&["--chunk", "--raw"], INFER).unwrap();
        assert_eq!(p.value("--chunk"), Some("--raw"));
        assert!(!p.switch("--raw"));
        let p = parse(&["-5", "x"], INFER).unwrap();
        assert_eq!(p.positional(), ["-5", "x"]);
    }

    #[test]
    fn errors_name_the_option() {
        assert_eq!(
            parse(&["--max-token", "3"], INFER).unwrap_err(),
            OptError::Unknown("--max-token")
        );
        assert_eq!(
            parse(&["p", "--chunk"], INFER).unwrap_err(),
            OptError::MissingValue("--chunk")
        );
        assert_eq!(
            parse(&["--raw", "--raw"], INFER).unwrap_err(),
            OptError::Repeated("--raw")
        );
        assert_eq!(
            parse(&["--chunk", "1", "--chunk", "2"], INFER).unwrap_err(),
            OptError::Repeated("--chunk")
        );
        let many = ["w"; MAX_ARGS + 1];
        assert_eq!(parse(&many, INFER).unwrap_err(), OptError::TooMany);
        assert_eq!(
            parse(&many[..MAX_ARGS], INFER).unwrap().positional().len(),
            MAX_ARGS
        );
        let p = parse(&["--max-tokens", "many"], INFER).unwrap();
        let e = p.number("--max-tokens").unwrap_err();
        assert_eq!(
            e,
            OptError::BadNumber {
                opt: "--max-tokens",
                value: "many"
            }
        );
        extern crate std;
        assert_eq!(
            std::format!("{e}"),
            "option --max-tokens: 'many' is not a number"
        );
    }
}
