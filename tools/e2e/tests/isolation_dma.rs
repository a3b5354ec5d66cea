//! System tests of device isolation: what the control guest's devices can reach by DMA, and
//! what stopping the control guest does to its devices.
//!
//! 1. A compromised control guest aims its devices' DMA (`dmaattack`, both directions: virtio-rng
//!    writes memory, virtio-console transmit reads it and sends it to the host) at the LLM
//!    guest's RAM, the audit log and the hypervisor image. The SMMU must fault every target the
//!    guest does not own (reported on the monitor, counted, audited, the guest stopped), the
//!    targets must stay unchanged (a canary in the LLM guest, the audit log, the hypervisor still
//!    answering; the host never receives their bytes), and after `restart ctl` host control
//!    works again.
//! 2. `stop ctl` while host bytes arrive and the console's interrupt is asserted: the stopped
//!    guest's devices are quiesced, so core 0 takes no interrupt storm (the monitor's per-core
//!    interrupt count stays at its idle rate), and `start ctl` brings shell and host control back.
//!
//! Each test boots one QEMU, without a model.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sis_e2e::text::{field, line, vm_line};
use sis_e2e::{Options, Sis, Source};
use sis_platform::layout::{ipa, phys, PAGE_SIZE};
use sis_platform::partition::{PARTITIONS, VM_LLM};

const BOOT: Duration = Duration::from_secs(60);
const CMD: Duration = Duration::from_secs(20);
const DATACTL: Duration = Duration::from_secs(30);
/// How long a DMA fault report may take to appear on the monitor.
const FAULT: Duration = Duration::from_secs(15);
/// How long the host listens for bytes a read attack may have sent.
const LISTEN: Duration = Duration::from_secs(3);
/// The canary the LLM guest keeps in the last page of its RAM ("SISCANAR").
const CANARY: u64 = 0x5349_5343_414e_4152;

fn boot() -> Sis {
    sis_e2e::build_once().expect("build");
    let sis = Sis::start(Options {
        no_model: true,
        ..Options::default()
    })
    .expect("start QEMU");
    sis.expect(Source::Ctl, "VCON: READY", BOOT)
        .expect("the console port is bound");
    sis.wait_prompt(Source::Ctl, BOOT).expect("ctl> prompt");
    sis.wait_prompt(Source::Llm, BOOT).expect("llm> prompt");
    sis
}

/// The hypervisor image the system booted (built by scripts/build.sh).
fn hypervisor_elf() -> Vec<u8> {
    let dir = std::env::var_os("SIS_IMAGE_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| sis_e2e::workspace_root().join("target/image"));
    let path = dir.join("aarch64-unknown-none-softfloat/release/hypervisor");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn u16_at(b: &[u8], o: usize) -> usize {
    u16::from_le_bytes([b[o], b[o + 1]]) as usize
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// `n` bytes of the ELF's loaded image at virtual address `addr` (from its PT_LOAD segments).
fn image_bytes(elf: &[u8], addr: u64, n: usize) -> Vec<u8> {
    let (phoff, phentsize, phnum) = (
        u64_at(elf, 0x20) as usize,
        u16_at(elf, 0x36),
        u16_at(elf, 0x38),
    );
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let (off, vaddr, filesz) = (
            u64_at(elf, ph + 8),
            u64_at(elf, ph + 0x10),
            u64_at(elf, ph + 0x20),
        );
        if u32_at(elf, ph) == 1 && (vaddr..vaddr + filesz).contains(&addr) {
            let at = (off + addr - vaddr) as usize;
            return elf[at..at + n].to_vec();
        }
    }
    panic!("{addr:#x} is not in a loaded segment of the hypervisor image");
}

/// Address of symbol `name` in the ELF's symbol table.
fn symbol(elf: &[u8], name: &str) -> u64 {
    let (shoff, shentsize, shnum) = (
        u64_at(elf, 0x28) as usize,
        u16_at(elf, 0x3a),
        u16_at(elf, 0x3c),
    );
    let section = |i: usize| shoff + i * shentsize;
    for i in 0..shnum {
        let sh = section(i);
        if u32_at(elf, sh + 4) != 2 {
            continue; // not SHT_SYMTAB
        }
        let (off, size, entsize) = (
            u64_at(elf, sh + 0x18) as usize,
            u64_at(elf, sh + 0x20) as usize,
            u64_at(elf, sh + 0x38) as usize,
        );
        let strtab = section(u32_at(elf, sh + 0x28) as usize);
        let stroff = u64_at(elf, strtab + 0x18) as usize;
        for s in (off..off + size).step_by(entsize) {
            let at = stroff + u32_at(elf, s) as usize;
            let end = at + elf[at..].iter().position(|&b| b == 0).unwrap();
            if &elf[at..end] == name.as_bytes() {
                return u64_at(elf, s + 8);
            }
        }
    }
    panic!("no symbol {name} in the hypervisor image");
}

/// A host connection to `sis.datactl` that collects whatever the guest sends.
fn listen(sis: &Sis) -> UnixStream {
    let s = UnixStream::connect(sis.datactl_socket()).expect("connect to sis.datactl");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s
}

fn received(mut port: UnixStream, for_: Duration) -> Vec<u8> {
    let deadline = Instant::now() + for_;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match port.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    got
}

/// `peek ADDR` in `src`: the u64 it prints.
fn peek(sis: &Sis, src: Source, addr: u64) -> u64 {
    let out = sis.run(src, &format!("peek {addr:#x}"), CMD).unwrap();
    let hex = out
        .split(": 0x")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no value in:\n{out}"));
    u64::from_str_radix(hex, 16).unwrap()
}

/// `restart ctl` and wait until host control is up again.
fn restart_ctl(sis: &Sis) {
    let out = sis.run(Source::Hv, "restart ctl", CMD).unwrap();
    assert!(out.contains("vm ctl restarted"), "{out}");
    sis.expect(Source::Ctl, "VCON: READY", BOOT)
        .expect("ctl binds its console port again");
    sis.wait_prompt(Source::Ctl, BOOT).expect("ctl> again");
}

/// One host round trip through the control guest and the LLM partition: an admin token from
/// `ctlembed`, `datactl llm-load`, answered `ERR 0x03` by the LLM partition (no model).
fn host_round_trip(sis: &Sis) {
    let out = sis.run(Source::Ctl, "ctlembed admin", CMD).unwrap();
    let token = out
        .split("EMBED TOKEN: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no token in:\n{out}"))
        .to_string();
    let r = sis
        .datactl(
            &[
                "--retries",
                "4",
                "--wait-ack",
                "--token",
                &token,
                "llm-load",
            ],
            DATACTL,
        )
        .unwrap();
    assert_eq!(r.stdout.trim(), "ERR 0x03", "{r:?}");
}

/// What the monitor's `audit` says: (records written, capacity).
fn audit_counts(sis: &Sis) -> (u64, u64) {
    let out = sis.run(Source::Hv, "audit", CMD).unwrap();
    let l = line(&out, "records written");
    (field(l, "audit:"), field(l, "capacity"))
}

#[test]
fn dma_aimed_at_other_partitions_faults_in_the_smmu_and_changes_nothing() {
    let sis = boot();
    let elf = hypervisor_elf();
    let llm_ram = PARTITIONS[VM_LLM].ram;
    let canary_ipa = ipa::RAM_BASE + llm_ram.size - PAGE_SIZE;
    sis.run(
        Source::Llm,
        &format!("poke {canary_ipa:#x} {CANARY:#x}"),
        CMD,
    )
    .unwrap();
    assert_eq!(peek(&sis, Source::Llm, canary_ipa), CANARY);
    let audit_header = peek(&sis, Source::Ctl, ipa::AUDIT_BASE).to_le_bytes();
    let (written_before, capacity) = audit_counts(&sis);
    assert!(capacity > 0);
    let trap_vector = symbol(&elf, "hv_vectors") + 0x400;

    // Every violation is collected, so a run against a system without an SMMU lists them all.
    let mut violations: Vec<String> = Vec::new();
    // Targets outside the control guest's RAM window (as device addresses) must fault.
    for (target, dir, secret) in [
        ("llm", "write", None),
        ("llm", "read", Some(CANARY.to_le_bytes().to_vec())),
        ("audit", "write", None),
        ("audit", "read", Some(audit_header.to_vec())),
    ] {
        let port = (dir == "read").then(|| listen(&sis));
        sis.mark(Source::Hv);
        sis.send_line(Source::Ctl, &format!("dmaattack {target} {dir}"))
            .unwrap();
        let device = if dir == "write" { "00:02.0" } else { "00:01.0" };
        let access = if dir == "write" { "write" } else { "read" };
        match sis.expect_regex(
            Source::Hv,
            &format!(
                r"vm ctl stopped: DMA fault by {device} \(stream 0x[0-9a-f]+\): {access} at IOVA 0x([0-9a-f]+), translation fault"
            ),
            FAULT,
        ) {
            Ok(m) => {
                let at = u64::from_str_radix(m.group(1).unwrap(), 16).unwrap();
                let expected = match target {
                    "llm" => llm_ram.pa + llm_ram.size - PAGE_SIZE,
                    _ => phys::AUDIT_BASE,
                };
                if at != expected {
                    violations.push(format!("{target} {dir}: fault at {at:#x}, not {expected:#x}"));
                }
            }
            Err(_) => violations.push(format!("{target} {dir}: no SMMU fault reported")),
        }
        if let (Some(port), Some(secret)) = (port, secret) {
            let got = received(port, LISTEN);
            if got.windows(secret.len()).any(|w| w == secret.as_slice()) {
                violations.push(format!(
                    "{target} read: the host received the target's bytes"
                ));
            }
        }
        restart_ctl(&sis);
    }
    // The LLM guest's canary and the audit log are untouched; the monitor keeps answering.
    let canary = peek(&sis, Source::Llm, canary_ipa);
    if canary != CANARY {
        violations.push(format!("llm canary changed to {canary:#x}"));
    }
    let (written, cap) = audit_counts(&sis);
    if cap != capacity || written < written_before {
        violations.push(format!(
            "audit log damaged: {written} records written, capacity {cap} (before: {written_before}, {capacity})"
        ));
    }

    // The hypervisor's machine addresses are inside the control guest's own device-address
    // window (IOVA = its guest-physical address), so DMA there reaches the guest's own RAM: the
    // host gets the guest's bytes, never the hypervisor's code.
    let port = listen(&sis);
    sis.run(Source::Ctl, "dmaattack hv read", CMD).unwrap();
    let got = received(port, LISTEN);
    let code = image_bytes(&elf, phys::HV_LOAD, 32);
    if got.windows(code.len()).any(|w| w == code.as_slice()) {
        violations.push("hv read: the host received the hypervisor's code".into());
    }
    // Random bytes aimed at the hypervisor's vector for synchronous exceptions from a guest
    // (every trap goes through it): the hypervisor keeps running.
    sis.send_line(Source::Ctl, &format!("dmaattack {trap_vector:#x} write"))
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    match sis.run(Source::Hv, "vms", CMD) {
        Ok(_) => {}
        Err(e) => violations.push(format!("hv write: the monitor stopped answering: {e}")),
    }
    assert!(
        violations.is_empty(),
        "DMA reached memory the control guest does not own:\n  {}",
        violations.join("\n  ")
    );
    let llm = sis.run(Source::Llm, "info", CMD).unwrap();
    assert!(llm.contains("vm: llm (id 1)"), "{llm}");

    // Counted per VM (QEMU retries a refused transfer in 4-byte pieces: one event each) and
    // audited once per stop, as the hypervisor's own records.
    let vms = sis.run(Source::Hv, "vms", CMD).unwrap();
    assert!(field(vm_line(&vms, "ctl"), "dma_faults=") >= 4, "{vms}");
    assert_eq!(field(vm_line(&vms, "llm"), "dma_faults="), 0, "{vms}");
    assert_eq!(field(vm_line(&vms, "ctl"), "cfg_refused="), 0, "{vms}");
    assert_eq!(
        field(&vms, "smmu: events="),
        field(vm_line(&vms, "ctl"), "dma_faults=")
    );
    let audit = sis.run(Source::Hv, "audit", CMD).unwrap();
    assert_eq!(audit.matches("op=13(dma_fault)").count(), 4, "{audit}");

    // After a restart, host control works again.
    restart_ctl(&sis);
    host_round_trip(&sis);
}

#[test]
fn stopping_ctl_while_its_device_interrupt_is_asserted_quiesces_it_and_start_recovers() {
    let sis = boot();
    // The host keeps sending frames (with a wrong token) over sis.datactl, so the console keeps
    // raising its interrupt.
    let stop = Arc::new(AtomicBool::new(false));
    let mut port = UnixStream::connect(sis.datactl_socket()).expect("connect to sis.datactl");
    port.set_write_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let sender = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut frame = vec![0x43, 0x00, 0x11, 0x00, 10 + 6, 0, 0, 0];
            frame.extend_from_slice(&1u64.to_le_bytes());
            frame.extend_from_slice(&4u16.to_le_bytes());
            frame.extend_from_slice(b"flood!");
            let mut sent = 0usize;
            while !stop.load(Ordering::Relaxed) {
                match port.write(&frame) {
                    Ok(n) => sent += n,
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            sent
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let out = sis.run(Source::Hv, "stop ctl", CMD).unwrap();
    assert!(out.contains("vm ctl stopped"), "{out}");
    // Bytes keep arriving for the stopped guest.
    std::thread::sleep(Duration::from_secs(1));
    let irqs = |sis: &Sis| {
        let vms = sis.run(Source::Hv, "vms", CMD).unwrap();
        field(line(&vms, "core irqs taken:"), " 0=")
    };
    let a = irqs(&sis);
    std::thread::sleep(Duration::from_secs(2));
    let b = irqs(&sis);
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    assert!(sent > 0);
    // Idle: a few UART interrupts for the typed command; a storm is millions.
    assert!(
        b - a < 1000,
        "core 0 took {} interrupts in 2 s while its VM was stopped",
        b - a
    );

    let out = sis.run(Source::Hv, "start ctl", CMD).unwrap();
    assert!(out.contains("vm ctl started"), "{out}");
    sis.expect(Source::Ctl, "VCON: READY", BOOT)
        .expect("ctl binds its console port again");
    sis.wait_prompt(Source::Ctl, BOOT)
        .expect("ctl> after start");
    let info = sis.run(Source::Ctl, "info", CMD).unwrap();
    assert!(info.contains("vm: ctl (id 0)"), "{info}");
    host_round_trip(&sis);
}
