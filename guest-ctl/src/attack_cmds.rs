//! `dmaattack`: a debug command that plays a compromised control guest. It points its own
//! devices' DMA at memory this VM does not own, in both directions:
//!
//! - `write`: virtio-rng is handed the target as its receive buffer, so the device writes 64
//!   random bytes there;
//! - `read`: virtio-console is handed the target as a transmit buffer, so the device reads 64
//!   bytes there and sends them to the host over `sis.datactl`.
//!
//! The driver lies to its device about the buffer address (`dma::redirect_next`), exactly what
//! a driver under an attacker's control can do. The platform must contain it: every target
//! outside this VM's own RAM faults in the SMMU, and the hypervisor stops the VM
//! (`docs/security.md`, "Device DMA"). `tools/e2e/tests/isolation_dma.rs` runs it.

use guest_rt::shell::{parse_u64, Command, Invocation};
use sis_platform::layout::{phys, PAGE_SIZE};
use sis_platform::partition::{PARTITIONS, VM_LLM};
use virtio_drivers::BufferDirection;

use crate::{dma, hostctl, rng};

/// Bytes each attack moves.
const LEN: usize = 64;

/// The attack command table.
pub static COMMANDS: [Command; 1] = [Command {
    name: "dmaattack",
    help: "dmaattack <llm|audit|hv|ADDR> <write|read>: aim the devices' DMA at memory of \
           another partition (must fault)",
    run: dmaattack,
}];

/// Machine address of a named target: the last page of the LLM VM's RAM (where the isolation
/// test keeps a canary), the audit log header, the hypervisor's entry code.
fn target(name: &str) -> Option<u64> {
    match name {
        "llm" => {
            let ram = PARTITIONS[VM_LLM].ram;
            Some(ram.pa + ram.size - PAGE_SIZE)
        }
        "audit" => Some(phys::AUDIT_BASE),
        "hv" => Some(phys::HV_LOAD),
        other => parse_u64(other),
    }
}

fn dmaattack(inv: &mut Invocation<'_, '_>) {
    let (Some(t), Some(dir)) = (inv.args.get(1), inv.args.get(2)) else {
        let _ = writeln!(inv.out, "usage: dmaattack <llm|audit|hv|ADDR> <write|read>");
        return;
    };
    let Some(addr) = target(t) else {
        let _ = writeln!(inv.out, "dmaattack: bad target '{t}'");
        return;
    };
    match *dir {
        "write" => {
            let mut buf = [0u8; LEN];
            dma::redirect_next(BufferDirection::DeviceToDriver, addr);
            let r = rng::fill(&mut buf);
            dma::clear_redirects();
            match r {
                Ok(()) => {
                    let _ = writeln!(
                        inv.out,
                        "dmaattack: virtio-rng wrote {LEN} bytes at {addr:#x}"
                    );
                }
                Err(e) => {
                    let _ = writeln!(inv.out, "dmaattack: {e}");
                }
            }
        }
        "read" => {
            let sent = {
                hostctl::with(|h| {
                    h.vcon_mut().map(|v| {
                        dma::redirect_next(BufferDirection::DriverToDevice, addr);
                        let queued = v.send_line(&[b'.'; LEN]);
                        dma::clear_redirects();
                        queued
                    })
                })
            };
            match sent {
                Some(true) => {
                    let _ = writeln!(
                        inv.out,
                        "dmaattack: virtio-console sent {LEN} bytes from {addr:#x} to the host"
                    );
                }
                Some(false) => {
                    let _ = writeln!(inv.out, "dmaattack: transmit queue full");
                }
                None => {
                    let _ = writeln!(inv.out, "dmaattack: no virtio-console");
                }
            }
        }
        other => {
            let _ = writeln!(inv.out, "dmaattack: '{other}' is neither write nor read");
        }
    }
}
