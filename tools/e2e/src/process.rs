//! Child processes in their own process group, so that everything they start can be stopped
//! together and nothing outlives the test.

use crate::error::{Error, Result};
use rustix::process::{kill_process_group, Pid, Signal};
use std::io::ErrorKind;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// How often a bounded wait polls the child.
const POLL: Duration = Duration::from_millis(10);

/// Spawns `cmd` as the leader of a new process group. On Linux the child also gets SIGKILL if the
/// spawning thread dies, so an aborted test run leaves no QEMU behind.
pub(crate) fn spawn_group(cmd: &mut Command, what: &str) -> Result<Child> {
    cmd.process_group(0);
    #[cfg(target_os = "linux")]
    {
        // SAFETY: the closure runs in the forked child before exec and only makes one prctl
        // system call, which is async-signal-safe; it touches no memory shared with the parent.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
                    .map_err(std::io::Error::from)
            });
        }
    }
    cmd.spawn()
        .map_err(|e| Error::io(format!("starting {what} ({:?})", cmd.get_program()), e))
}

/// Waits at most `timeout` for `child` to exit.
pub(crate) fn wait_bounded(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Ok(Some(st)),
            Ok(None) => {}
            Err(e) => return Err(Error::io("waiting for a child process", e)),
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}

fn signal_group(child: &Child, sig: Signal) -> Result<()> {
    let pid = Pid::from_child(child);
    match kill_process_group(pid, sig) {
        Ok(()) => Ok(()),
        // The group is already gone.
        Err(e) if std::io::Error::from(e).kind() == ErrorKind::NotFound => Ok(()),
        Err(e) if e == rustix::io::Errno::SRCH => Ok(()),
        Err(e) => Err(Error::io(
            format!("signalling process group {}", pid.as_raw_nonzero()),
            e.into(),
        )),
    }
}

/// Stops the whole process group led by `child`: SIGTERM, then SIGKILL after `grace`; reaps the
/// leader and returns its exit status.
pub(crate) fn kill_group(child: &mut Child, grace: Duration) -> Result<ExitStatus> {
    signal_group(child, Signal::TERM)?;
    if let Some(st) = wait_bounded(child, grace)? {
        // The leader is gone; make sure no other member of its group lingers.
        signal_group(child, Signal::KILL)?;
        return Ok(st);
    }
    signal_group(child, Signal::KILL)?;
    child
        .wait()
        .map_err(|e| Error::io("reaping a killed child process", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_group_stops_the_leader_and_its_children() {
        // The shell ignores SIGTERM, so only the SIGKILL after the grace period ends it; its
        // background child must go with the group.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "trap '' TERM; sleep 30 & echo $! ; wait"]);
        cmd.stdout(std::process::Stdio::piped());
        let mut child = spawn_group(&mut cmd, "test shell").expect("spawn");
        let mut out = child.stdout.take().expect("piped");
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(&mut out)
            .read_line(&mut line)
            .expect("pid line");
        let grandchild: i32 = line.trim().parse().expect("pid");
        let start = Instant::now();
        let st = kill_group(&mut child, Duration::from_millis(200)).expect("kill");
        assert!(!st.success());
        assert!(start.elapsed() < Duration::from_secs(5));
        // The grandchild was reparented, so it is not ours to reap: poll until it has gone.
        let gpid = Pid::from_raw(grandchild).expect("nonzero");
        let deadline = Instant::now() + Duration::from_secs(5);
        while rustix::process::test_kill_process(gpid).is_ok() {
            assert!(
                Instant::now() < deadline,
                "grandchild {grandchild} survived"
            );
            std::thread::sleep(POLL);
        }
    }

    #[test]
    fn wait_bounded_times_out() {
        let mut child = spawn_group(Command::new("sleep").arg("5"), "sleep").expect("spawn");
        assert!(wait_bounded(&mut child, Duration::from_millis(50))
            .expect("wait")
            .is_none());
        kill_group(&mut child, Duration::from_millis(500)).expect("kill");
    }
}
