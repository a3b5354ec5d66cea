//! Output formats of the common shell commands (pure, so the exact text is host tested; the
//! end-to-end tests match these lines).

use core::fmt::{self, Write};

/// What `info` reports.
pub struct Info<'a> {
    /// VM name from the boot info.
    pub vm_name: &'a str,
    /// VM id from the boot info.
    pub vm_id: u64,
    /// Bit `n` set: core `n` is online.
    pub online: u64,
    /// Guest RAM size in bytes.
    pub ram_size: u64,
    /// Guest RAM base.
    pub ram_base: u64,
    /// CNTFRQ_EL0.
    pub timer_hz: u64,
}

/// Writes the set bits of `mask` as comma separated numbers (`1,2,3`), `none` if empty.
pub fn write_core_list(out: &mut dyn Write, mask: u64) -> fmt::Result {
    if mask == 0 {
        return out.write_str("none");
    }
    let mut first = true;
    for core in (0..64).filter(|c| mask & (1 << c) != 0) {
        if !first {
            out.write_char(',')?;
        }
        write!(out, "{core}")?;
        first = false;
    }
    Ok(())
}

/// The `info` lines.
pub fn write_info(out: &mut dyn Write, i: &Info<'_>) -> fmt::Result {
    writeln!(out, "el: 1")?;
    writeln!(out, "vm: {} (id {})", i.vm_name, i.vm_id)?;
    out.write_str("cores: ")?;
    write_core_list(out, i.online)?;
    out.write_char('\n')?;
    writeln!(out, "memory: {} MiB at {:#x}", i.ram_size >> 20, i.ram_base)?;
    writeln!(out, "timer: {} Hz", i.timer_hz)
}

/// The `ticks` line: tick count and uptime from `counter` ticks of a `freq` Hz counter.
pub fn write_ticks(out: &mut dyn Write, ticks: u64, counter: u64, freq: u64) -> fmt::Result {
    let ms = if freq == 0 {
        0
    } else {
        (counter as u128 * 1000 / freq as u128) as u64
    };
    writeln!(
        out,
        "ticks: {ticks} uptime: {}.{:03} s",
        ms / 1000,
        ms % 1000
    )
}

/// The `peek` line.
pub fn write_peek(out: &mut dyn Write, addr: u64, value: u64) -> fmt::Result {
    writeln!(out, "{addr:#x}: {value:#018x}")
}

/// The boot line every guest prints before its prompt.
pub fn write_boot_line(out: &mut dyn Write, name: &str, core: usize, ram_size: u64) -> fmt::Result {
    writeln!(
        out,
        "{name}: booted on core {core}, {} MiB RAM",
        ram_size >> 20
    )
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::String;

    #[test]
    fn info_format() {
        let mut s = String::new();
        let info = Info {
            vm_name: "llm",
            vm_id: 1,
            online: 0b1110,
            ram_size: 384 << 20,
            ram_base: 0x4000_0000,
            timer_hz: 62_500_000,
        };
        write_info(&mut s, &info).unwrap();
        assert_eq!(
            s,
            "el: 1\nvm: llm (id 1)\ncores: 1,2,3\nmemory: 384 MiB at 0x40000000\ntimer: 62500000 Hz\n"
        );
    }

    #[test]
    fn core_lists() {
        let mut s = String::new();
        write_core_list(&mut s, 1).unwrap();
        s.push('|');
        write_core_list(&mut s, 0).unwrap();
        s.push('|');
        write_core_list(&mut s, 1 << 63 | 1 << 2).unwrap();
        assert_eq!(s, "0|none|2,63");
    }

    #[test]
    fn ticks_format() {
        let mut s = String::new();
        write_ticks(&mut s, 1234, 62_500_000 * 12 + 3_125_000, 62_500_000).unwrap();
        assert_eq!(s, "ticks: 1234 uptime: 12.050 s\n");
        let mut s = String::new();
        write_ticks(&mut s, 0, 5, 0).unwrap();
        assert_eq!(s, "ticks: 0 uptime: 0.000 s\n");
    }

    #[test]
    fn peek_format_pads_value_to_16_digits() {
        let mut s = String::new();
        write_peek(&mut s, 0x4000_0000, 0xd00d_feed).unwrap();
        assert_eq!(s, "0x40000000: 0x00000000d00dfeed\n");
    }

    #[test]
    fn boot_line() {
        let mut s = String::new();
        write_boot_line(&mut s, "ctl", 0, 64 << 20).unwrap();
        assert_eq!(s, "ctl: booted on core 0, 64 MiB RAM\n");
    }
}
