//! The consoles multiplexed onto the one physical UART, and how each is named on the wire.

use std::fmt;

/// One source of console output.
///
/// The hypervisor prefixes every physical output line with the tag of the console that produced
/// it. Lines without a recognised tag (for example QEMU's own messages, or anything printed before
/// the hypervisor's console mux is up) are attributed to [`Source::Untagged`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// The hypervisor and its monitor (`[hv] `, prompt `hv> `).
    Hv,
    /// The control guest (`[ctl] `, prompt `ctl> `).
    Ctl,
    /// The LLM guest (`[llm] `, prompt `llm> `).
    Llm,
    /// Physical lines that carry no known tag. Output only: it cannot be focused.
    Untagged,
}

impl Source {
    /// Every source, in index order.
    pub const ALL: [Source; 4] = [Source::Hv, Source::Ctl, Source::Llm, Source::Untagged];

    /// The sources that carry a tag on the wire (and can be focused).
    pub const TAGGED: [Source; 3] = [Source::Hv, Source::Ctl, Source::Llm];

    /// Dense index (0..4), used for per-source tables.
    pub const fn index(self) -> usize {
        match self {
            Source::Hv => 0,
            Source::Ctl => 1,
            Source::Llm => 2,
            Source::Untagged => 3,
        }
    }

    /// The line tag as it appears on the wire, including the trailing space.
    pub const fn tag(self) -> Option<&'static str> {
        match self {
            Source::Hv => Some("[hv] "),
            Source::Ctl => Some("[ctl] "),
            Source::Llm => Some("[llm] "),
            Source::Untagged => None,
        }
    }

    /// The shell prompt of this console (no trailing newline on the wire).
    pub const fn prompt(self) -> Option<&'static str> {
        match self {
            Source::Hv => Some("hv> "),
            Source::Ctl => Some("ctl> "),
            Source::Llm => Some("llm> "),
            Source::Untagged => None,
        }
    }

    /// The key that follows Ctrl-A to focus this console.
    pub const fn focus_key(self) -> Option<u8> {
        match self {
            Source::Hv => Some(b'0'),
            Source::Ctl => Some(b'1'),
            Source::Llm => Some(b'2'),
            Source::Untagged => None,
        }
    }

    /// The console that a Ctrl-A `key` sequence focuses, if `key` is a focus key.
    pub fn from_focus_key(key: u8) -> Option<Source> {
        Source::TAGGED
            .into_iter()
            .find(|s| s.focus_key() == Some(key))
    }

    /// Short lower-case name (`hv`, `ctl`, `llm`, `untagged`).
    pub const fn name(self) -> &'static str {
        match self {
            Source::Hv => "hv",
            Source::Ctl => "ctl",
            Source::Llm => "llm",
            Source::Untagged => "untagged",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_dense_and_distinct() {
        for (i, s) in Source::ALL.into_iter().enumerate() {
            assert_eq!(s.index(), i);
        }
    }

    #[test]
    fn focus_keys_round_trip() {
        for s in Source::TAGGED {
            let key = s.focus_key().expect("tagged sources have focus keys");
            assert_eq!(Source::from_focus_key(key), Some(s));
        }
        assert_eq!(Source::from_focus_key(b'3'), None);
        assert_eq!(Source::from_focus_key(0x01), None);
        assert_eq!(Source::Untagged.focus_key(), None);
    }

    #[test]
    fn tags_and_prompts_match_the_console_contract() {
        assert_eq!(Source::Hv.tag(), Some("[hv] "));
        assert_eq!(Source::Ctl.tag(), Some("[ctl] "));
        assert_eq!(Source::Llm.tag(), Some("[llm] "));
        assert_eq!(Source::Llm.prompt(), Some("llm> "));
        assert_eq!(Source::Untagged.tag(), None);
    }

    /// The harness names the consoles as the partition table does (tags, keys, VM names).
    #[test]
    fn sources_are_the_partition_tables_consoles() {
        use sis_platform::partition::{SYSTEM, VM_CTL, VM_LLM};
        assert_eq!(Source::Hv.tag(), Some(SYSTEM.monitor_tag));
        assert_eq!(Source::Hv.focus_key(), Some(SYSTEM.monitor_key));
        for (s, id) in [(Source::Ctl, VM_CTL), (Source::Llm, VM_LLM)] {
            let vm = &SYSTEM.vms[id];
            assert_eq!(s.tag(), Some(vm.tag), "{s}");
            assert_eq!(s.focus_key(), Some(vm.console_key), "{s}");
            assert_eq!(s.name(), vm.name);
        }
        assert_eq!(SYSTEM.vms.len(), 2, "a new VM needs a Source");
    }
}
