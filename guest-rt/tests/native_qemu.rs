//! Boots each guest kernel directly on QEMU (no hypervisor) and drives its shell.
//!
//! Needs `qemu-system-aarch64` and the kernels built first:
//! `cargo build --release --target aarch64-unknown-none -p guest-ctl -p guest-llm`, then
//! `cargo test -p guest-rt --test native_qemu -- --ignored`. The kernels are looked up in
//! `$SIS_GUEST_DIR`, else `$CARGO_TARGET_DIR/aarch64-unknown-none/release`, else the workspace's
//! `target/aarch64-unknown-none/release`. Every wait is bounded and QEMU is always killed.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

fn image(name: &str) -> PathBuf {
    let dir = std::env::var_os("SIS_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
            target.join("aarch64-unknown-none/release")
        });
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: build the guest kernels first",
        path.display()
    );
    path
}

/// A guest running on QEMU with its UART on our stdin/stdout.
struct Guest {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<Vec<u8>>,
    /// Everything printed so far (CR removed).
    log: String,
    /// Start of the text not yet consumed by `expect`.
    cursor: usize,
}

impl Guest {
    fn boot(name: &str) -> Guest {
        Guest::boot_with(name, &[])
    }

    /// Boots `name` with extra QEMU arguments (e.g. loader devices).
    fn boot_with(name: &str, extra: &[String]) -> Guest {
        let mut child = Command::new("qemu-system-aarch64")
            .args([
                "-M",
                "virt,gic-version=3",
                "-cpu",
                "cortex-a72",
                "-smp",
                "4",
                "-m",
                "1G",
            ])
            .args([
                "-display", "none", "-monitor", "none", "-nic", "none", "-serial", "stdio",
            ])
            .arg("-kernel")
            .arg(image(name))
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("qemu-system-aarch64 must be installed");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Guest {
            child,
            stdin,
            rx,
            log: String::new(),
            cursor: 0,
        }
    }

    /// Waits until `needle` appears after the cursor; returns the text before it and moves the
    /// cursor past it.
    fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.log[self.cursor..].find(needle) {
                let before = self.log[self.cursor..self.cursor + i].to_string();
                self.cursor += i + needle.len();
                return before;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(chunk) => self
                    .log
                    .push_str(&String::from_utf8_lossy(&chunk).replace('\r', "")),
                Err(_) => panic!(
                    "timed out waiting for {needle:?}; console so far:\n{}",
                    self.log
                ),
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.stdin.write_all(&[*b]).unwrap();
            self.stdin.flush().unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Types `line`, waits for the next prompt, returns the command's output (without the echo).
    fn run(&mut self, prompt: &str, line: &str) -> String {
        self.run_for(prompt, line, Duration::from_secs(20))
    }

    /// [`Guest::run`] for a command that computes for a while (inference under emulation).
    fn run_long(&mut self, prompt: &str, line: &str) -> String {
        self.run_for(prompt, line, Duration::from_secs(180))
    }

    fn run_for(&mut self, prompt: &str, line: &str, timeout: Duration) -> String {
        self.send(line.as_bytes());
        self.send(b"\r");
        self.expect(&format!("{line}\n"), Duration::from_secs(10));
        self.expect(prompt, timeout)
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// First 8 bytes of the image at the kernel base, from the ELF file.
fn first_word_of_image(name: &str) -> u64 {
    let elf = std::fs::read(image(name)).unwrap();
    // ELF64: e_phoff at 0x20, e_phentsize at 0x36, e_phnum at 0x38; take the PT_LOAD at the
    // lowest virtual address.
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (u64_at(0x20) as usize, u16_at(0x36), u16_at(0x38));
    let text = (0..phnum)
        .map(|i| phoff + i * phentsize)
        .filter(|&ph| u32::from_le_bytes(elf[ph..ph + 4].try_into().unwrap()) == 1)
        .min_by_key(|&ph| u64_at(ph + 0x10))
        .unwrap();
    assert_eq!(u64_at(text + 0x10), sis_platform::layout::ipa::KERNEL_BASE);
    u64_at(u64_at(text + 0x08) as usize)
}

fn parse_ticks(out: &str) -> u64 {
    let rest = out
        .trim()
        .strip_prefix("ticks: ")
        .unwrap_or_else(|| panic!("bad ticks line {out:?}"));
    let (ticks, uptime) = rest.split_once(" uptime: ").unwrap();
    assert!(uptime.ends_with(" s") && uptime.contains('.'), "{out:?}");
    ticks.parse().unwrap()
}

#[test]
#[ignore = "needs qemu-system-aarch64 and the guest kernels built for aarch64-unknown-none"]
fn guest_ctl_shell_on_bare_qemu() {
    let mut g = Guest::boot("guest-ctl");
    g.expect(
        "ctl: booted on core 0, 512 MiB RAM\n",
        Duration::from_secs(20),
    );
    g.expect("ctl> ", Duration::from_secs(5));

    let help = g.run("ctl> ", "help");
    for cmd in [
        "help", "info", "ticks", "peek", "reboot", "halt", "stats", "heaptest", "fpcheck",
    ] {
        assert!(
            help.contains(&format!("\n  {cmd}  - ")) || help.starts_with(&format!("  {cmd}  - ")),
            "{help}"
        );
    }
    assert_eq!(
        g.run("ctl> ", "info"),
        "el: 1\nvm: ctl (id 0)\ncores: 0\nmemory: 512 MiB at 0x40000000\ntimer: 62500000 Hz\n"
    );

    let t1 = parse_ticks(&g.run("ctl> ", "ticks"));
    std::thread::sleep(Duration::from_millis(300));
    let t2 = parse_ticks(&g.run("ctl> ", "ticks"));
    assert!(
        t1 > 0 && t2 > t1,
        "ticks must advance from timer interrupts: {t1} then {t2}"
    );

    let word = first_word_of_image("guest-ctl");
    assert_eq!(
        g.run("ctl> ", "peek 0x40080000"),
        format!("0x40080000: {word:#018x}\n")
    );
    assert_eq!(g.run("ctl> ", "peek 0x4008_0000x"), "peek: bad address\n");
    assert_eq!(g.run("ctl> ", "peek"), "usage: peek <addr>\n");
    assert_eq!(
        g.run("ctl> ", "frob \"a b\""),
        "unknown command: frob (try 'help')\n"
    );
    assert_eq!(g.run("ctl> ", "info \"open"), "error: unterminated quote\n");

    // Line editing: DEL and backspace erase, Ctrl-U kills the line.
    g.send(b"tixx\x7f\x08cks\r");
    g.expect("ticks: ", Duration::from_secs(10));
    g.expect("ctl> ", Duration::from_secs(10));
    g.send(b"garbage\x15info\r");
    g.expect("el: 1\n", Duration::from_secs(10));
    g.expect("ctl> ", Duration::from_secs(10));
    let long = "x".repeat(600);
    g.send(long.as_bytes());
    g.send(b"\r");
    g.expect(
        "error: line too long (max 512 bytes), ignored\n",
        Duration::from_secs(20),
    );
    g.expect("ctl> ", Duration::from_secs(10));
    let stats = g.run("ctl> ", "stats");
    assert!(
        stats.contains("hypervisor: no hypervisor (native boot)\n"),
        "{stats}"
    );
    assert!(stats.contains("shell: lines rejected 1\n"), "{stats}");
    assert!(
        stats.contains("uart: rx dropped 0 rx errors 0\n"),
        "{stats}"
    );

    assert!(g.run("ctl> ", "fpcheck").starts_with("fpcheck: ok"));
    assert!(g
        .run("ctl> ", "heaptest 64")
        .contains("written, verified and freed"));
    assert!(g
        .run("ctl> ", "heaptest 4096")
        .starts_with("heaptest: cannot allocate 4096 MiB"));

    // A fault is reported with its syndrome and stops the core.
    g.send(b"peek 0x8000000000\r");
    let report = g.expect("halted\n", Duration::from_secs(10));
    assert!(
        report.contains("FATAL sync exception on core 0: data abort"),
        "{report}"
    );
    assert!(report.contains("FAR=0x0000008000000000"), "{report}");
    assert!(report.contains("translation fault, level 0"), "{report}");
}

#[test]
#[ignore = "needs qemu-system-aarch64 and the guest kernels built for aarch64-unknown-none"]
fn guest_llm_starts_its_worker_cores_on_bare_qemu() {
    let mut g = Guest::boot("guest-llm");
    g.expect(
        "llm: booted on core 0, 512 MiB RAM\n",
        Duration::from_secs(20),
    );
    g.expect("llm> ", Duration::from_secs(10));
    let info = g.run("llm> ", "info");
    assert!(
        info.contains("\nvm: llm (id 0)\ncores: 0,1,2,3\n"),
        "{info}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let cores = g.run("llm> ", "cores");
    for core in 1..4 {
        let line = cores
            .lines()
            .find(|l| l.starts_with(&format!("core {core}: worker, ticks ")))
            .unwrap_or_else(|| panic!("core {core} did not answer:\n{cores}"));
        let ticks: u64 = line
            .split("ticks ")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            ticks > 0,
            "worker core {core} counts no timer ticks: {line}"
        );
    }
    assert!(g.run("llm> ", "fpcheck").starts_with("fpcheck: ok"));
    assert!(g
        .run("llm> ", "heaptest 300")
        .contains("written, verified and freed"));
}

#[test]
#[ignore = "needs qemu-system-aarch64 and the guest kernels built for aarch64-unknown-none"]
fn kernel_text_is_not_writable() {
    let mut g = Guest::boot("guest-ctl");
    g.expect("ctl> ", Duration::from_secs(20));
    // The heap is writable.
    assert_eq!(
        g.run("ctl> ", "poke 0x40400000 0x5a"),
        "0x40400000 <- 0x000000000000005a\n"
    );
    assert_eq!(
        g.run("ctl> ", "peek 0x40400000"),
        "0x40400000: 0x000000000000005a\n"
    );
    assert_eq!(
        g.run("ctl> ", "poke 0x40400000"),
        "usage: poke <addr> <value>\n"
    );
    // The kernel's own text is not.
    g.send(b"poke 0x40080000 0\r");
    let report = g.expect("halted\n", Duration::from_secs(10));
    assert!(
        report.contains("write of 0x40080000: permission fault, level 3"),
        "{report}"
    );
}

/// QEMU loader arguments placing `model` and its manifest in the native model region, as
/// `scripts/run.sh --native` does (`sis_platform::layout::native`, manifest layout in
/// `sis_platform::layout::model_region`).
fn native_model_args(model: &std::path::Path, tmp: &std::path::Path) -> Vec<String> {
    use sis_platform::layout::{model_region, native};
    let len = std::fs::metadata(model).unwrap().len();
    let words = [
        model_region::MANIFEST_MAGIC,
        model_region::MANIFEST_VERSION,
        0,
        len,
        0,
        0,
        0,
        0,
    ];
    let manifest: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    std::fs::write(tmp, manifest).unwrap();
    vec![
        "-device".into(),
        format!(
            "loader,file={},addr={:#x},force-raw=on",
            model.display(),
            native::MODEL_BASE
        ),
        "-device".into(),
        format!(
            "loader,file={},addr={:#x},force-raw=on",
            tmp.display(),
            native::MODEL_BASE + model_region::MANIFEST_OFFSET
        ),
    ]
}

#[test]
#[ignore = "needs qemu-system-aarch64 and the guest kernels built for aarch64-unknown-none"]
fn guest_llm_runs_the_model_on_bare_qemu() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let model = root.join("models/test/tiny-llama.gguf");
    let tmp = std::env::temp_dir().join(format!("sis-native-manifest-{}.bin", std::process::id()));
    let args = native_model_args(&model, &tmp);
    let mut g = Guest::boot_with("guest-llm", &args);
    g.expect("llm> ", Duration::from_secs(20));
    // QEMU has read its loader files once the guest runs.
    let _ = std::fs::remove_file(&tmp);
    let load = g.run("llm> ", "llmctl load");
    assert!(load.contains("llmctl load: ok"), "{load}");
    // The same greedy tokens as the host engine and the partition (tools/e2e/tests/llm.rs:
    // `llm-run --model models/test/tiny-llama.gguf --prompt "why was op B slower than op A?"
    // --max-tokens 8 --show-tokens`).
    let out = g.run_long(
        "llm> ",
        "llminfer \"why was op B slower than op A?\" --max-tokens 8",
    );
    assert!(
        out.contains("[LLM] tokens: [143, 409, 8, 434, 303, 64, 118, 90]\n"),
        "{out}"
    );
    // The heap stops below the model region: 300 MiB no longer fit in the 512 MiB assumed.
    assert!(g
        .run("llm> ", "heaptest 300")
        .starts_with("heaptest: cannot allocate 300 MiB"));
    assert!(g
        .run("llm> ", "heaptest 200")
        .contains("written, verified and freed"));
}
