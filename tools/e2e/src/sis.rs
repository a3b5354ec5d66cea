//! One running SIS instance under QEMU: start, console, QMP, datactl, and cleanup on drop.

use crate::command::{datactl_binary, run_command, CommandOutput};
use crate::console::{Console, ConsoleOptions};
use crate::error::{Error, Result};
use crate::process::{kill_group, spawn_group};
use crate::qmp::Qmp;
use crate::slots::Slot;
use std::ffi::OsString;
use std::fs::File;
use std::io::ErrorKind;
use std::ops::Deref;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The least time a QMP exchange may take (QEMU answers once it has loaded every image).
const QMP_TIMEOUT: Duration = Duration::from_secs(60);

/// The default option `datactl` takes for the UNIX socket path.
pub const DATACTL_SOCKET_FLAG: &str = "--socket";

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = here.join("..").join("..");
    root.canonicalize().unwrap_or(root)
}

/// How to start the system.
#[derive(Clone, Debug)]
pub struct Options {
    /// Model file for the LLM partition (`run.sh --model`). `None` leaves the choice to
    /// `run.sh` (its default model) unless `no_model` is set.
    pub model: Option<PathBuf>,
    /// Boot without a model (`run.sh --no-model`); refused together with `model`.
    pub no_model: bool,
    /// Instruction-count timing (`run.sh --icount N`, QEMU `-icount shift=N`).
    pub icount: Option<u32>,
    /// Extra QEMU arguments (after `--`).
    pub extra_qemu_args: Vec<String>,
    /// Bound on QEMU creating its sockets and accepting the connections.
    pub boot_timeout: Duration,
    /// The script to run; default `<workspace>/scripts/run.sh`, or `$SIS_RUN_SCRIPT` if set.
    pub run_script: Option<PathBuf>,
    /// Also put the virtio-console (`sis.datactl`) on a socket (`run.sh --datactl-socket`).
    pub datactl_socket: bool,
    /// Start QEMU paused (`-S`, plus a QMP socket) and let it run only once the console is
    /// connected, so no early output is lost.
    pub start_paused: bool,
    /// Time between SIGTERM and SIGKILL when stopping QEMU.
    pub kill_grace: Duration,
    /// Console tuning.
    pub console: ConsoleOptions,
    /// Keep the temporary directory (logs, sockets) even on success. Also set by
    /// `SIS_E2E_KEEP=1`. It is always kept when the test panics.
    pub keep_logs: bool,
    /// Extra environment for the run script (for example `("DATACTL_TCP", "1")`).
    pub env: Vec<(String, String)>,
    /// The `datactl` option that names the socket ([`Sis::datactl`] puts it first).
    pub datactl_socket_flag: String,
    /// The `datactl` binary to use; default: [`datactl_binary`]'s search.
    pub datactl_binary: Option<PathBuf>,
    /// Bound on waiting for an instance slot (see `SIS_E2E_PARALLEL`).
    pub slot_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            model: None,
            no_model: false,
            icount: None,
            extra_qemu_args: Vec::new(),
            boot_timeout: Duration::from_secs(20),
            run_script: None,
            datactl_socket: true,
            start_paused: true,
            kill_grace: Duration::from_secs(2),
            console: ConsoleOptions::default(),
            keep_logs: false,
            env: Vec::new(),
            datactl_socket_flag: DATACTL_SOCKET_FLAG.into(),
            datactl_binary: None,
            slot_timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// Files of one instance, all inside its temporary directory.
#[derive(Clone, Debug)]
struct Paths {
    console_socket: PathBuf,
    datactl_socket: PathBuf,
    qmp_socket: PathBuf,
    console_log: PathBuf,
    qemu_log: PathBuf,
}

impl Paths {
    fn new(dir: &Path) -> Paths {
        Paths {
            console_socket: dir.join("console.sock"),
            datactl_socket: dir.join("datactl.sock"),
            qmp_socket: dir.join("qmp.sock"),
            console_log: dir.join("console.log"),
            qemu_log: dir.join("qemu.log"),
        }
    }
}

/// A running SIS instance. Dereferences to its [`Console`]. Dropping it stops QEMU (the whole
/// process group); if the thread is panicking, or a wait on this instance failed (so a test that
/// returns `Err` is covered too), it prints the console log and QEMU's output to stderr and keeps
/// the log directory.
pub struct Sis {
    console: Console,
    qmp: Mutex<Option<Qmp>>,
    child: Mutex<Child>,
    dir: Option<TempDir>,
    paths: Paths,
    opts: Options,
    // Released last (fields drop in order), after QEMU is gone.
    _slot: Slot,
}

fn read_lossy(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => format!("(could not read {}: {e})", path.display()),
    }
}

/// Connects to a UNIX socket that a child creates, retrying until `deadline`; fails early if the
/// child exits.
fn connect_when_ready(
    path: &Path,
    what: &str,
    child: &mut Child,
    deadline: Instant,
    qemu_log: &Path,
) -> Result<UnixStream> {
    let mut last_err: Option<std::io::Error>;
    loop {
        if let Some(st) = child
            .try_wait()
            .map_err(|e| Error::io("checking on QEMU", e))?
        {
            return Err(Error::Start(format!(
                "the run script exited ({st}) before the {what} socket was ready; its output:\n{}",
                read_lossy(qemu_log)
            )));
        }
        match UnixStream::connect(path) {
            Ok(s) => return Ok(s),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                last_err = Some(e);
            }
            Err(e) => return Err(Error::io(format!("connecting to {}", path.display()), e)),
        }
        if Instant::now() >= deadline {
            return Err(Error::Start(format!(
                "the {what} socket {} was not ready in time ({}); output so far:\n{}",
                path.display(),
                last_err.map_or_else(|| "no attempt".into(), |e| e.to_string()),
                read_lossy(qemu_log)
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Sis {
    /// The usual first step of a system test: builds once (see [`crate::build_once`]), starts
    /// the system and waits (bounded by `timeout` each) for both guests' prompts.
    pub fn boot(opts: Options, timeout: Duration) -> Result<Sis> {
        crate::build::build_once()?;
        let sis = Sis::start(opts)?;
        sis.wait_prompt(crate::Source::Ctl, timeout)?;
        sis.wait_prompt(crate::Source::Llm, timeout)?;
        Ok(sis)
    }

    /// Starts the system: a fresh temporary directory, `run.sh --no-build` in its own process
    /// group with its output in `qemu.log`, then connects the console (and QMP, resuming a
    /// paused start). Build first (`scripts/build.sh`); this does not build.
    pub fn start(opts: Options) -> Result<Sis> {
        let script = opts
            .run_script
            .clone()
            .or_else(|| std::env::var_os("SIS_RUN_SCRIPT").map(PathBuf::from))
            .unwrap_or_else(|| workspace_root().join("scripts").join("run.sh"));
        if opts.no_model && opts.model.is_some() {
            return Err(Error::BadInput(
                "both a model and no_model were requested".into(),
            ));
        }
        if !script.is_file() {
            return Err(Error::Start(format!(
                "run script {} not found",
                script.display()
            )));
        }
        let slot = Slot::acquire(opts.slot_timeout)?;
        let dir = tempfile::Builder::new()
            .prefix("sis-e2e-")
            .tempdir()
            .map_err(|e| Error::io("creating the test directory", e))?;
        let paths = Paths::new(dir.path());
        let log = File::create(&paths.qemu_log)
            .map_err(|e| Error::io(format!("creating {}", paths.qemu_log.display()), e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| Error::io("duplicating the QEMU log handle", e))?;

        let mut cmd = Command::new(&script);
        cmd.args(script_args(&opts, &paths))
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = spawn_group(&mut cmd, "the run script")?;
        match Sis::connect(&mut child, &paths, &opts) {
            Ok((console, qmp)) => Ok(Sis {
                console,
                qmp: Mutex::new(qmp),
                child: Mutex::new(child),
                dir: Some(dir),
                paths,
                opts,
                _slot: slot,
            }),
            Err(e) => {
                let _ = kill_group(&mut child, opts.kill_grace);
                Err(e)
            }
        }
    }

    fn connect(child: &mut Child, paths: &Paths, opts: &Options) -> Result<(Console, Option<Qmp>)> {
        let deadline = Instant::now() + opts.boot_timeout;
        let stream = connect_when_ready(
            &paths.console_socket,
            "console",
            child,
            deadline,
            &paths.qemu_log,
        )?;
        let log = File::create(&paths.console_log)
            .map_err(|e| Error::io(format!("creating {}", paths.console_log.display()), e))?;
        let mut console = Console::from_stream(stream, opts.console.clone(), Some(log))?;
        console.set_log_path(paths.console_log.clone());
        if !opts.start_paused {
            return Ok((console, None));
        }
        let stream =
            connect_when_ready(&paths.qmp_socket, "QMP", child, deadline, &paths.qemu_log)?;
        // QEMU answers QMP only once its start-up (loading the images and the model file) is
        // done, which on a loaded host outlasts what is left of the connect deadline.
        let left = deadline.saturating_duration_since(Instant::now());
        let mut qmp = Qmp::from_stream(stream, left.max(QMP_TIMEOUT))?;
        qmp.execute("cont", None)?;
        Ok((console, Some(qmp)))
    }

    /// The console connection (also reachable through `Deref`).
    pub fn console(&self) -> &Console {
        &self.console
    }

    /// The instance's temporary directory (sockets and logs).
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }

    /// The copy of the raw console stream on disk.
    pub fn console_log_path(&self) -> &Path {
        &self.paths.console_log
    }

    /// The file with the run script's and QEMU's stdout and stderr.
    pub fn qemu_log_path(&self) -> &Path {
        &self.paths.qemu_log
    }

    /// What the run script and QEMU printed so far.
    pub fn qemu_output(&self) -> String {
        read_lossy(&self.paths.qemu_log)
    }

    /// The virtio-console (datactl) socket path.
    pub fn datactl_socket(&self) -> &Path {
        &self.paths.datactl_socket
    }

    /// QEMU's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.lock_child().id()
    }

    fn lock_child(&self) -> MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// QEMU's exit status if it has exited (for example after the guest powered off).
    pub fn exit_status(&self) -> Result<Option<ExitStatus>> {
        self.lock_child()
            .try_wait()
            .map_err(|e| Error::io("checking on QEMU", e))
    }

    /// Runs a QMP command (needs `start_paused`, which sets up QMP) and returns its result.
    pub fn qmp(
        &self,
        command: &str,
        arguments: Option<serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let mut q = self.qmp.lock().unwrap_or_else(|e| e.into_inner());
        q.as_mut()
            .ok_or_else(|| Error::Qmp("no QMP session (start_paused was off)".into()))?
            .execute(command, arguments)
    }

    /// Runs `datactl <socket flag> <this instance's socket> ARGS...` with a time limit.
    pub fn datactl(&self, args: &[&str], timeout: Duration) -> Result<CommandOutput> {
        let socket: OsString = self.paths.datactl_socket.clone().into();
        let mut full: Vec<OsString> = vec![self.opts.datactl_socket_flag.clone().into(), socket];
        full.extend(args.iter().map(OsString::from));
        self.datactl_raw(&full, timeout)
    }

    /// Runs `datactl ARGS...` exactly as given (no socket option added), with a time limit.
    pub fn datactl_raw(&self, args: &[OsString], timeout: Duration) -> Result<CommandOutput> {
        if !self.opts.datactl_socket {
            return Err(Error::BadInput(
                "this instance was started without a datactl socket".into(),
            ));
        }
        let bin = match &self.opts.datactl_binary {
            Some(p) => p.clone(),
            None => datactl_binary()?,
        };
        let mut cmd = Command::new(bin);
        cmd.args(args);
        run_command(cmd, timeout)
    }

    fn dump_logs(&self, kept: &Path) {
        let raw = self.console.raw_log();
        eprintln!(
            "\n===== SIS console log ({} bytes; kept in {}) =====",
            raw.len(),
            kept.join("console.log").display()
        );
        eprintln!("{}", String::from_utf8_lossy(&raw));
        eprintln!(
            "===== QEMU stdout/stderr ({}) =====",
            kept.join("qemu.log").display()
        );
        eprintln!("{}", self.qemu_output());
        eprintln!("===== end of SIS logs (directory {}) =====", kept.display());
    }
}

/// The run-script command line for `opts`.
fn script_args(opts: &Options, paths: &Paths) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec![
        "--no-build".into(),
        "--console-socket".into(),
        paths.console_socket.clone().into(),
    ];
    if opts.datactl_socket {
        a.push("--datactl-socket".into());
        a.push(paths.datactl_socket.clone().into());
    }
    if let Some(m) = &opts.model {
        a.push("--model".into());
        a.push(m.clone().into());
    }
    if opts.no_model {
        a.push("--no-model".into());
    }
    if let Some(n) = opts.icount {
        a.push("--icount".into());
        a.push(n.to_string().into());
    }
    let mut extra: Vec<OsString> = opts.extra_qemu_args.iter().map(OsString::from).collect();
    if opts.start_paused {
        extra.push("-S".into());
        extra.push("-qmp".into());
        let mut q = OsString::from("unix:");
        q.push(&paths.qmp_socket);
        q.push(",server=on,wait=off");
        extra.push(q);
    }
    if !extra.is_empty() {
        a.push("--".into());
        a.extend(extra);
    }
    a
}

impl Deref for Sis {
    type Target = Console;

    fn deref(&self) -> &Console {
        &self.console
    }
}

impl Drop for Sis {
    fn drop(&mut self) {
        let grace = self.opts.kill_grace;
        let status = {
            let mut child = self.lock_child();
            kill_group(&mut child, grace)
        };
        // QEMU is gone, so the socket is closing; let the reader take in the last bytes.
        let _ = self.console.wait_closed(Duration::from_secs(1));
        // A test that returns an error instead of panicking has usually seen a failed wait.
        let failing = std::thread::panicking() || self.console.failed_waits() > 0;
        let keep = failing
            || self.opts.keep_logs
            || std::env::var_os("SIS_E2E_KEEP").is_some_and(|v| v != "0");
        if keep {
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                if failing {
                    self.dump_logs(&kept);
                } else {
                    eprintln!("sis-e2e: logs kept in {}", kept.display());
                }
            }
        }
        if let Err(e) = status {
            eprintln!("sis-e2e: stopping QEMU failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_args_follow_the_run_sh_contract() {
        let paths = Paths::new(Path::new("/t"));
        let opts = Options {
            model: Some("/m.gguf".into()),
            icount: Some(4),
            extra_qemu_args: vec!["-d".into(), "guest_errors".into()],
            ..Options::default()
        };
        let args: Vec<String> = script_args(&opts, &paths)
            .into_iter()
            .map(|a| a.into_string().expect("utf-8"))
            .collect();
        assert_eq!(
            args,
            [
                "--no-build",
                "--console-socket",
                "/t/console.sock",
                "--datactl-socket",
                "/t/datactl.sock",
                "--model",
                "/m.gguf",
                "--icount",
                "4",
                "--",
                "-d",
                "guest_errors",
                "-S",
                "-qmp",
                "unix:/t/qmp.sock,server=on,wait=off",
            ]
        );
    }

    #[test]
    fn minimal_args_have_no_separator() {
        let paths = Paths::new(Path::new("/t"));
        let opts = Options {
            datactl_socket: false,
            start_paused: false,
            no_model: true,
            ..Options::default()
        };
        let args = script_args(&opts, &paths);
        assert_eq!(args.len(), 4);
        assert_eq!(args[3], "--no-model");
        assert!(!args.iter().any(|a| a == "--"));
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        let root = workspace_root();
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("root manifest");
        assert!(manifest.contains("[workspace]"));
    }

    #[test]
    fn model_and_no_model_conflict() {
        let e = Sis::start(Options {
            model: Some("/m.gguf".into()),
            no_model: true,
            ..Options::default()
        })
        .err()
        .expect("conflict");
        assert!(matches!(e, Error::BadInput(_)), "{e}");
    }

    #[test]
    fn missing_script_is_a_clear_error() {
        let e = Sis::start(Options {
            run_script: Some("/nonexistent/run.sh".into()),
            ..Options::default()
        })
        .err()
        .expect("no script");
        assert!(
            e.to_string().contains("/nonexistent/run.sh not found"),
            "{e}"
        );
    }
}
