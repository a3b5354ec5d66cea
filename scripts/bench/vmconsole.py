"""A QEMU serial console on a UNIX socket, driven like a terminal by the benchmarks.

QEMU is started with the console on a socket server (`server=on,wait=on`); this connects,
logs everything received to a file, and waits for regular expressions with a bound on every
wait. A failed wait raises `ConsoleError` carrying the end of the log.
"""
import os
import re
import socket
import time


class ConsoleError(Exception):
    pass


class Console:
    def __init__(self, path, log_path, proc, connect_timeout=60):
        self.path = path
        self.log_path = log_path
        self.proc = proc
        self.log = open(log_path, "wb")
        self.pending = b""
        deadline = time.time() + connect_timeout
        while True:
            if proc.poll() is not None:
                raise ConsoleError("QEMU exited (status %s) before its console came up; see %s"
                                   % (proc.returncode, log_path))
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(path)
                break
            except OSError:
                s.close()
                if time.time() > deadline:
                    raise ConsoleError("no console socket at %s after %d s" % (path, connect_timeout))
                time.sleep(0.1)
        s.settimeout(0.5)
        self.sock = s

    def _recv(self):
        try:
            b = self.sock.recv(65536)
        except socket.timeout:
            return True
        if not b:
            return False
        self.log.write(b)
        self.log.flush()
        self.pending += b
        return True

    def tail(self, n=40):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])

    def expect(self, pattern, timeout):
        """Waits for `pattern` (bytes regex); returns the text up to the end of the match and
        consumes it."""
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        while True:
            m = rx.search(self.pending)
            if m:
                out = self.pending[:m.end()]
                self.pending = self.pending[m.end():]
                return out.decode("utf-8", "replace")
            if time.time() > deadline:
                raise ConsoleError("timed out after %d s waiting for %r; console log %s ends with:\n%s"
                                   % (timeout, pattern, self.log_path, self.tail()))
            if not self._recv():
                raise ConsoleError("console closed while waiting for %r; console log %s ends with:\n%s"
                                   % (pattern, self.log_path, self.tail()))

    def drain(self, secs):
        """Reads (and logs) for `secs`, dropping what arrived."""
        deadline = time.time() + secs
        while time.time() < deadline:
            if not self._recv():
                break
        self.pending = b""

    def send(self, data, chunk=8, delay=0.003):
        """Types `data` in small chunks so no emulated UART receive FIFO overflows."""
        for i in range(0, len(data), chunk):
            self.sock.sendall(data[i:i + chunk])
            time.sleep(delay)

    def close(self):
        try:
            self.sock.close()
        finally:
            self.log.close()


def cpu_seconds(pid):
    """User + system CPU time of process `pid` and its threads so far, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        stat = f.read()
    fields = stat[stat.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vcpu_seconds(pid, cpus):
    """User + system CPU time so far of QEMU's vCPU threads for `cpus` (cpu indexes), in
    seconds. Needs QEMU started with `-name ...,debug-threads=on` (threads named `CPU n/TCG`;
    with -icount one thread, `ALL CPUs/TCG`, runs every vCPU in turn and counts for all)."""
    total, found = 0.0, set()
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                name = f.read().strip()
            if name == "ALL CPUs/TCG":
                covers = set(cpus)
            elif name.startswith("CPU ") and name.endswith("/TCG") and int(name[4:-4]) in cpus:
                covers = {int(name[4:-4])}
            else:
                continue
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                stat = f.read()
        except (OSError, ValueError):
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        found |= covers
    if found != set(cpus):
        raise OSError("no vCPU threads %s in QEMU %d (found %s)" % (sorted(cpus), pid, sorted(found)))
    return total
