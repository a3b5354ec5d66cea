//! The commands every guest shell has: `help`, `info`, `ticks`, `peek`, `reboot`, `halt`.

use super::{boot, mmio, psci, smp, timer};
use crate::report;
use crate::shell::{parse_u64, Command, Invocation};

/// The common command table; put it first in a guest's table list.
pub static COMMON: [Command; 6] = [
    Command {
        name: "help",
        help: "list the commands",
        run: help,
    },
    Command {
        name: "info",
        help: "show the VM, its cores, memory and timer",
        run: info,
    },
    Command {
        name: "ticks",
        help: "show this core's timer ticks and the uptime",
        run: ticks,
    },
    Command {
        name: "peek",
        help: "peek <addr>: read the u64 at a guest-physical address",
        run: peek,
    },
    Command {
        name: "reboot",
        help: "restart this VM (PSCI SYSTEM_RESET)",
        run: reboot,
    },
    Command {
        name: "halt",
        help: "power this VM off (PSCI SYSTEM_OFF)",
        run: halt,
    },
];

fn help(inv: &mut Invocation<'_, '_>) {
    inv.commands.print_help(inv.out);
}

fn info(inv: &mut Invocation<'_, '_>) {
    let b = boot::boot_info();
    let _ = report::write_info(
        inv.out,
        &report::Info {
            vm_name: b.name(),
            vm_id: b.vm_id,
            online: smp::online_mask(),
            ram_size: b.ram_size,
            ram_base: b.ram_base,
            timer_hz: timer::frequency(),
        },
    );
}

fn ticks(inv: &mut Invocation<'_, '_>) {
    let core = smp::core_id();
    let _ = report::write_ticks(
        inv.out,
        timer::ticks(core),
        timer::uptime_counts(),
        timer::frequency(),
    );
}

fn peek(inv: &mut Invocation<'_, '_>) {
    let [_, arg] = inv.args else {
        let _ = writeln!(inv.out, "usage: peek <addr>");
        return;
    };
    let Some(addr) = parse_u64(arg) else {
        let _ = writeln!(inv.out, "peek: bad address");
        return;
    };
    if addr % 8 != 0 {
        let _ = writeln!(inv.out, "peek: bad address (must be 8-byte aligned)");
        return;
    }
    // SAFETY: deliberately unchecked (see the command's purpose): an address outside the
    // guest's memory faults, and under the hypervisor that stops this VM. The address is aligned.
    let value = unsafe { mmio::read_u64(addr) };
    let _ = report::write_peek(inv.out, addr, value);
}

fn reboot(inv: &mut Invocation<'_, '_>) {
    let _ = writeln!(inv.out, "rebooting");
    let e = psci::system_reset();
    let _ = writeln!(inv.out, "reboot: PSCI SYSTEM_RESET failed: {e:?}");
}

fn halt(inv: &mut Invocation<'_, '_>) {
    let _ = writeln!(inv.out, "powering off");
    let e = psci::system_off();
    let _ = writeln!(inv.out, "halt: PSCI SYSTEM_OFF failed: {e:?}");
}
