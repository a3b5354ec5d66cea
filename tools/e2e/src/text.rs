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
    #[should_panic(expected = "no number after 'cores='")]
    fn missing_number_panics_with_the_text() {
        field("cores=x", "cores=");
    }
}
