//! Argument parsing of the inference commands (`llminfer`, `llmstream`, `llmgraph`,
//! `llmctl run`): pure logic over the shell's option parser, tested on the host. Every error is
//! one line that names the offending word; nothing is submitted on an error.

use alloc::format;
use alloc::string::String;

use alloc::vec::Vec;
use guest_rt::shell::opts::{self, Spec};
use shared_ring::message::{Milli, Sampling, StopList, MAX_STOPS, MAX_STOP_LEN, MAX_SYSTEM};

/// Most tokens one request may ask for.
pub const MAX_TOKENS_LIMIT: u64 = 4096;
/// Tokens generated when `--max-tokens` is not given.
pub const DEFAULT_MAX_TOKENS: u32 = 8;
/// Largest `--chunk`.
pub const MAX_CHUNK: u64 = 64;
/// Default chunk of `llmstream` and `llmgraph`.
pub const DEFAULT_CHUNK: u32 = 4;
/// Largest temperature, in thousandths.
pub const MAX_TEMP_MILLI: u32 = 5000;
/// Largest repeat penalty, in thousandths (the host frame's limit).
pub const MAX_REPEAT_PENALTY_MILLI: u32 = 10_000;
/// Largest seed: the sampler's generator takes 32 bits, as llama.cpp's.
pub const MAX_SEED: u64 = u32::MAX as u64;
/// Longest prompt in bytes (the ring's limit, so shell and ring accept the same prompts).
pub const MAX_PROMPT_BYTES: usize = shared_ring::message::MAX_PROMPT;

/// A parsed inference request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InferArgs {
    /// Prompt text.
    pub prompt: String,
    /// Tokens to generate at most.
    pub max_tokens: u32,
    /// Sampling controls ([`Sampling::DEFAULT`] for what is not given: greedy, and
    /// llama.cpp's top-k 40, top-p 0.95, min-p 0.05 once a temperature is given).
    pub sampling: Sampling,
    /// Stop strings (`--stop TEXT`, repeatable).
    pub stop: StopList,
    /// Wrap the prompt in the model's chat template.
    pub chat: bool,
    /// System message of the chat template (`--system TEXT`, needs `--chat`).
    pub system: Option<String>,
    /// The conversation (`--session new|ID`, needs `--chat`).
    pub session: Option<SessionArg>,
    /// Recompute the conversation's KV cache for this turn (`--cold`, needs `--session ID`).
    pub cold: bool,
    /// Tokens per chunk (stream and graph only).
    pub chunk: u32,
    /// Server to run on (`None` = the shell's server).
    pub server: Option<String>,
}

/// `--session new` or `--session ID`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionArg {
    /// Open a conversation with this turn.
    New,
    /// Continue conversation `ID`.
    Continue(u64),
}

/// Which options a command takes besides the common ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `llminfer`.
    Infer,
    /// `llmstream` and `llmgraph` (`--chunk`).
    Chunked,
}

const INFER_SPEC: Spec = Spec {
    valued: &[
        "--max-tokens",
        "--temp",
        "--top-k",
        "--top-p",
        "--min-p",
        "--repeat-penalty",
        "--repeat-last-n",
        "--seed",
        "--server",
        "--system",
        "--session",
    ],
    switches: &["--chat", "--cold"],
};
const CHUNKED_SPEC: Spec = Spec {
    valued: &[
        "--max-tokens",
        "--temp",
        "--top-k",
        "--top-p",
        "--min-p",
        "--repeat-penalty",
        "--repeat-last-n",
        "--seed",
        "--server",
        "--chunk",
        "--system",
        "--session",
    ],
    switches: &["--chat", "--cold"],
};

/// Parses a decimal (`0`, `0.7`, `1.25`, at most 3 decimals) into thousandths.
pub fn parse_milli(s: &str) -> Option<u32> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 3
        || int.len() > 4
    {
        return None;
    }
    let i: u32 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut f: u32 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    for _ in frac.len()..3 {
        f *= 10;
    }
    Some(i * 1000 + f)
}

/// A decimal option in thousandths within `lo..=hi` (thousandths); `range` is how the error
/// states the range.
fn decimal(
    p: &opts::Parsed<'_>,
    name: &str,
    lo: u32,
    hi: u32,
    range: &str,
) -> Result<Option<u16>, String> {
    match p.value(name) {
        None => Ok(None),
        Some(t) => match parse_milli(t) {
            Some(v) if (lo..=hi).contains(&v) => Ok(Some(v as u16)),
            Some(_) => Err(format!("option {name}: '{t}' is out of range ({range})")),
            None => Err(format!("option {name}: '{t}' is not a decimal number")),
        },
    }
}

fn ranged(p: &opts::Parsed<'_>, name: &str, lo: u64, hi: u64) -> Result<Option<u64>, String> {
    match p.number(name).map_err(|e| format!("{e}"))? {
        None => Ok(None),
        Some(v) if (lo..=hi).contains(&v) => Ok(Some(v)),
        Some(v) => Err(format!("option {name}: {v} is out of range ({lo}..={hi})")),
    }
}

/// Takes the `--stop TEXT` pairs out of `words` (the only option that may repeat).
fn take_stops<'a>(words: &[&'a str]) -> Result<(StopList, Vec<&'a str>), String> {
    let mut stop = StopList::new();
    let mut rest = Vec::new();
    let mut it = words.iter();
    while let Some(&w) = it.next() {
        if w != "--stop" {
            rest.push(w);
            continue;
        }
        let Some(&s) = it.next() else {
            return Err("option --stop needs a value".into());
        };
        if s.is_empty() || s.len() > MAX_STOP_LEN {
            return Err(format!(
                "option --stop: '{s}' must be 1..={MAX_STOP_LEN} bytes"
            ));
        }
        let s = heapless::String::try_from(s)
            .map_err(|_| format!("option --stop: '{s}' is too long"))?;
        stop.push(s)
            .map_err(|_| format!("option --stop: at most {MAX_STOPS} stop strings"))?;
    }
    Ok((stop, rest))
}

/// Parses the words after the command name.
pub fn parse_infer(words: &[&str], kind: Kind) -> Result<InferArgs, String> {
    let spec = match kind {
        Kind::Infer => INFER_SPEC,
        Kind::Chunked => CHUNKED_SPEC,
    };
    let (stop, words) = take_stops(words)?;
    let p = opts::parse(&words, spec).map_err(|e| format!("{e}"))?;
    let prompt = match p.positional() {
        [one] => *one,
        [] => return Err("missing prompt (put it in double quotes)".into()),
        [_, extra, ..] => {
            return Err(format!(
                "unexpected argument '{extra}' (quote a prompt with spaces)"
            ))
        }
    };
    if prompt.is_empty() {
        return Err("empty prompt".into());
    }
    if prompt.len() > MAX_PROMPT_BYTES {
        return Err(format!(
            "prompt is {} bytes (max {MAX_PROMPT_BYTES})",
            prompt.len()
        ));
    }
    let max_tokens =
        ranged(&p, "--max-tokens", 1, MAX_TOKENS_LIMIT)?.map_or(DEFAULT_MAX_TOKENS, |v| v as u32);
    let d = Sampling::DEFAULT;
    let milli = |name, lo, hi, range, default: Milli| {
        decimal(&p, name, lo, hi, range).map(|v| v.map_or(default, Milli))
    };
    let sampling = Sampling {
        temp: milli("--temp", 0, MAX_TEMP_MILLI, "0..=5", d.temp)?,
        top_k: ranged(&p, "--top-k", 0, u64::from(u32::MAX))?.map_or(d.top_k, |v| v as u32),
        top_p: milli("--top-p", 0, 1000, "0..=1", d.top_p)?,
        min_p: milli("--min-p", 0, 1000, "0..=1", d.min_p)?,
        repeat_penalty: milli(
            "--repeat-penalty",
            1,
            MAX_REPEAT_PENALTY_MILLI,
            "0.001..=10",
            d.repeat_penalty,
        )?,
        repeat_last_n: ranged(&p, "--repeat-last-n", 0, u64::from(u32::MAX))?
            .map_or(d.repeat_last_n, |v| v as u32),
        seed: ranged(&p, "--seed", 0, MAX_SEED)?.unwrap_or(d.seed),
    };
    let chunk = ranged(&p, "--chunk", 1, MAX_CHUNK)?.map_or(DEFAULT_CHUNK, |v| v as u32);
    let server = match p.value("--server") {
        Some(s) => Some(parse_name(s)?.into()),
        None => None,
    };
    let chat = p.switch("--chat");
    let system = match p.value("--system") {
        None => None,
        Some(_) if !chat => return Err("option --system needs --chat".into()),
        Some(s) if s.is_empty() || s.len() > MAX_SYSTEM => {
            return Err(format!(
                "option --system: the message must be 1..={MAX_SYSTEM} bytes"
            ))
        }
        Some(s) => Some(s.into()),
    };
    let session = match p.value("--session") {
        None => None,
        Some(_) if !chat => return Err("option --session needs --chat".into()),
        Some("new") => Some(SessionArg::New),
        Some(v) => match guest_rt::shell::parse_u64(v) {
            Some(id) if id != 0 => Some(SessionArg::Continue(id)),
            _ => {
                return Err(format!(
                    "option --session: '{v}' is not 'new' or a session id"
                ))
            }
        },
    };
    let cold = p.switch("--cold");
    if cold && !matches!(session, Some(SessionArg::Continue(_))) {
        return Err("option --cold needs --session ID".into());
    }
    Ok(InferArgs {
        prompt: prompt.into(),
        max_tokens,
        sampling,
        stop,
        chat,
        system,
        session,
        cold,
        chunk,
        server,
    })
}

/// Longest server name.
pub const MAX_NAME: usize = 15;

/// Checks a server name: 1..=15 characters of `[a-z0-9_-]`.
pub fn parse_name(s: &str) -> Result<&str, String> {
    if s.is_empty() || s.len() > MAX_NAME {
        return Err(format!(
            "server name '{s}' must be 1..={MAX_NAME} characters"
        ));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "server name '{s}' may use only a-z, 0-9, '_' and '-'"
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_recipe_lines() {
        let a = parse_infer(
            &["why was op B slower than op A?", "--max-tokens", "8"],
            Kind::Infer,
        )
        .unwrap();
        assert_eq!(a.prompt, "why was op B slower than op A?");
        assert_eq!(
            (a.max_tokens, a.sampling, a.chat),
            (8, Sampling::DEFAULT, false)
        );
        let a = parse_infer(
            &[
                "p",
                "--max-tokens",
                "8",
                "--chunk",
                "2",
                "--temp",
                "0.7",
                "--seed",
                "42",
                "--chat",
            ],
            Kind::Chunked,
        )
        .unwrap();
        assert_eq!(
            (a.chunk, a.sampling.temp, a.sampling.seed, a.chat),
            (2, Milli(700), 42, true)
        );
        let a = parse_infer(
            &[
                "p",
                "--temp",
                "1.5",
                "--top-k",
                "7",
                "--top-p",
                "0.5",
                "--min-p",
                "0.1",
                "--repeat-penalty",
                "1.3",
                "--repeat-last-n",
                "8",
                "--seed",
                "4294967295",
            ],
            Kind::Infer,
        )
        .unwrap();
        assert_eq!(
            a.sampling,
            Sampling {
                temp: Milli(1500),
                top_k: 7,
                top_p: Milli(500),
                min_p: Milli(100),
                repeat_penalty: Milli(1300),
                repeat_last_n: 8,
                seed: u64::from(u32::MAX),
            }
        );
        assert_eq!(
            parse_infer(&["p"], Kind::Chunked).unwrap().chunk,
            DEFAULT_CHUNK
        );
        assert_eq!(
            parse_infer(&["p"], Kind::Infer).unwrap().max_tokens,
            DEFAULT_MAX_TOKENS
        );
    }

    #[test]
    fn bad_input_is_one_clear_error() {
        let e = |w: &[&str], k| parse_infer(w, k).unwrap_err();
        assert_eq!(
            e(&[], Kind::Infer),
            "missing prompt (put it in double quotes)"
        );
        assert_eq!(
            e(&["p", "--chunk", "2"], Kind::Infer),
            "unknown option --chunk"
        );
        assert_eq!(
            e(&["p", "--max-tokens"], Kind::Infer),
            "option --max-tokens needs a value"
        );
        assert_eq!(
            e(&["p", "--max-tokens", "0"], Kind::Infer),
            "option --max-tokens: 0 is out of range (1..=4096)"
        );
        assert_eq!(
            e(&["p", "--max-tokens", "x"], Kind::Infer),
            "option --max-tokens: 'x' is not a number"
        );
        assert_eq!(
            e(&["p", "--chunk", "65"], Kind::Chunked),
            "option --chunk: 65 is out of range (1..=64)"
        );
        assert_eq!(
            e(&["p", "--temp", "abc"], Kind::Infer),
            "option --temp: 'abc' is not a decimal number"
        );
        assert_eq!(
            e(&["p", "--temp", "9"], Kind::Infer),
            "option --temp: '9' is out of range (0..=5)"
        );
        assert_eq!(
            e(&["p", "--seed", "4294967296"], Kind::Infer),
            "option --seed: 4294967296 is out of range (0..=4294967295)"
        );
        assert_eq!(
            e(&["p", "--top-p", "1.5"], Kind::Infer),
            "option --top-p: '1.5' is out of range (0..=1)"
        );
        assert_eq!(
            e(&["p", "--min-p", "x"], Kind::Infer),
            "option --min-p: 'x' is not a decimal number"
        );
        assert_eq!(
            e(&["p", "--repeat-penalty", "0"], Kind::Infer),
            "option --repeat-penalty: '0' is out of range (0.001..=10)"
        );
        assert_eq!(
            e(&["p", "--top-k", "-1"], Kind::Infer),
            "option --top-k: '-1' is not a number"
        );
        assert_eq!(
            e(&["a", "b"], Kind::Infer),
            "unexpected argument 'b' (quote a prompt with spaces)"
        );
        assert_eq!(e(&[""], Kind::Infer), "empty prompt");
        let long = "x".repeat(MAX_PROMPT_BYTES + 1);
        assert!(e(&[&long], Kind::Infer).contains("max 1024"));
        assert!(e(&["p", "--server", "BG"], Kind::Infer).contains("may use only"));
    }

    #[test]
    fn sessions_are_chats() {
        let a = parse_infer(&["p", "--chat", "--session", "new"], Kind::Infer).unwrap();
        assert_eq!((a.session, a.cold), (Some(SessionArg::New), false));
        let a = parse_infer(
            &["p", "--chat", "--session", "0x1f", "--cold"],
            Kind::Chunked,
        )
        .unwrap();
        assert_eq!((a.session, a.cold), (Some(SessionArg::Continue(31)), true));
        let e = |w: &[&str]| parse_infer(w, Kind::Infer).unwrap_err();
        assert_eq!(
            e(&["p", "--session", "new"]),
            "option --session needs --chat"
        );
        assert_eq!(
            e(&["p", "--chat", "--session", "x"]),
            "option --session: 'x' is not 'new' or a session id"
        );
        assert!(e(&["p", "--chat", "--session", "0"]).contains("not 'new'"));
        assert_eq!(
            e(&["p", "--chat", "--session", "new", "--cold"]),
            "option --cold needs --session ID"
        );
    }

    #[test]
    fn a_system_message_needs_chat() {
        let a = parse_infer(&["p", "--chat", "--system", "Be brief."], Kind::Chunked).unwrap();
        assert_eq!((a.chat, a.system.as_deref()), (true, Some("Be brief.")));
        assert_eq!(parse_infer(&["p"], Kind::Infer).unwrap().system, None);
        let e = |w: &[&str]| parse_infer(w, Kind::Infer).unwrap_err();
        assert_eq!(e(&["p", "--system", "x"]), "option --system needs --chat");
        let long = "s".repeat(MAX_SYSTEM + 1);
        assert!(e(&["p", "--chat", "--system", &long]).contains("1..=256 bytes"));
    }

    #[test]
    fn stop_strings_repeat_and_are_bounded() {
        let a = parse_infer(
            &[
                "p",
                "--stop",
                "User:",
                "--max-tokens",
                "4",
                "--stop",
                "\n\n",
            ],
            Kind::Infer,
        )
        .unwrap();
        let stops: Vec<&str> = a.stop.iter().map(|s| s.as_str()).collect();
        assert_eq!(stops, ["User:", "\n\n"]);
        assert_eq!(a.max_tokens, 4);
        assert_eq!(a.prompt, "p");
        let e = |w: &[&str]| parse_infer(w, Kind::Infer).unwrap_err();
        assert_eq!(e(&["p", "--stop"]), "option --stop needs a value");
        assert_eq!(
            e(&["p", "--stop", ""]),
            "option --stop: '' must be 1..=64 bytes"
        );
        let long = "x".repeat(65);
        assert!(e(&["p", "--stop", &long]).contains("must be 1..=64 bytes"));
        assert_eq!(
            e(&["p", "--stop", "a", "--stop", "b", "--stop", "c", "--stop", "d", "--stop", "e"]),
            "option --stop: at most 4 stop strings"
        );
    }

    #[test]
    fn decimals() {
        assert_eq!(parse_milli("0"), Some(0));
        assert_eq!(parse_milli("1"), Some(1000));
        assert_eq!(parse_milli("0.05"), Some(50));
        assert_eq!(parse_milli(".5"), Some(500));
        assert_eq!(parse_milli("1.234"), Some(1234));
        for bad in ["", ".", "1.2345", "-1", "1e3", "0x1", "1..2"] {
            assert_eq!(parse_milli(bad), None, "{bad}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(parse_name("bg"), Ok("bg"));
        assert!(parse_name("").is_err());
        assert!(parse_name("a-very-long-name-x").is_err());
        assert!(parse_name("a b").is_err());
    }
}
