//! Small parsers for command output that system tests share.

/// The number right after `key` in `text` (after optional spaces).
///
/// # Panics
/// If `key` is missing or no number follows it (the message quotes `text`).
pub fn field(text: &str, key: &str) -> u64 {
    let at = text
        .find(key)
        .unwrap_or_else(|| panic!("no '{key}' in:\n{text}"));
    text[at + key.len()..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after '{key}' in:\n{text}"))
}

/// The first line of `text` containing `key`.
///
/// # Panics
/// If no line contains it (the message quotes `text`).
pub fn line<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(key))
        .unwrap_or_else(|| panic!("no line with '{key}' in:\n{text}"))
}

/// The monitor's `vms` line of VM `name`.
///
/// # Panics
/// If there is none.
pub fn vm_line<'a>(vms: &'a str, name: &str) -> &'a str {
    vms.lines()
        .find(|l| l.trim_start().starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no line for vm {name} in:\n{vms}"))
}

/// The ids of the first `[LLM] tokens: [...]` line in `out` (what the LLM shell prints after a
/// generation).
///
/// # Panics
/// If there is no such line or an id is not a number (the message quotes `out`).
pub fn token_ids(out: &str) -> Vec<u32> {
    let l = out
        .lines()
        .find_map(|l| l.strip_prefix("[LLM] tokens: "))
        .unwrap_or_else(|| panic!("no token line in:\n{out}"));
    l.trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .unwrap_or_else(|_| panic!("bad token id {s:?} in:\n{out}"))
        })
        .collect()
}

/// The token `ctlembed` printed (`EMBED TOKEN: 0x...`).
///
/// # Panics
/// If there is none (the message quotes `out`).
pub fn embedded_token(out: &str) -> u64 {
    out.split("EMBED TOKEN: 0x")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .unwrap_or_else(|| panic!("no token in:\n{out}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_lines() {
        let t = "ctl running cores=0 exits=42 (mmio=7)\nllm stopped cores=1,2,3 exits=9";
        assert_eq!(field(t, "exits="), 42);
        assert_eq!(field(vm_line(t, "llm"), "exits="), 9);
        assert_eq!(field("ticks: 17 uptime", "ticks:"), 17);
        assert_eq!(line(t, "mmio"), "ctl running cores=0 exits=42 (mmio=7)");
    }

    #[test]
    fn parses_token_ids_and_embedded_tokens() {
        let out = "llm> llminfer x\n[LLM] tokens: [143, 409,8]\n[LLM] tokens: [1]";
        assert_eq!(token_ids(out), [143, 409, 8]);
        assert_eq!(token_ids("[LLM] tokens: []"), [0u32; 0]);
        assert_eq!(embedded_token("ok\nEMBED TOKEN: 0x00ab12 rights=3"), 0xab12);
    }

    #[test]
    #[should_panic(expected = "no token in")]
    fn missing_embedded_token_panics_with_the_text() {
        embedded_token("EMBED TOKEN: none");
    }

    #[test]
    #[should_panic(expected = "no number after 'cores='")]
    fn missing_number_panics_with_the_text() {
        field("cores=x", "cores=");
    }
}
