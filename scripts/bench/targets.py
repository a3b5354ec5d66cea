"""The systems `llm_guest.py` measures, each behind the same interface:

    start()                        boot (or check) it, with the model in place
    run(threads, prompt, tokens)   one greedy generation; returns a Result
    stop()

Partition   SIS under the hypervisor: guest-llm's engine in the LLM partition (scripts/run.sh),
            `llmctl workers N-1` for N vCPUs, figures from the guest's own counters.
Native      the same guest-llm kernel alone on bare QEMU at EL1 (scripts/run.sh --native).
LinuxVm     llama.cpp (llama-completion) in the Linux VM of scripts/linux-vm/ on the same QEMU
            machine model, N threads.
UserMode    the engine as an aarch64 Linux process under qemu-aarch64 (engine-bench), 1 thread.

Every figure is what the system measured itself with its own clock (the guest's virtual
counter, the VM's CLOCK_MONOTONIC), so under -icount all of them are virtual time.
"""
import os
import re
import resource
import signal
import subprocess
import time
from dataclasses import dataclass, field

from vmconsole import Console, ConsoleError, cpu_seconds, vcpu_seconds


@dataclass
class Result:
    prompt_tokens: int
    prompt_tps: float
    tokens: int          # generated tokens
    passes: int          # forward passes of generated tokens (the generation rate's unit)
    gen_tps: float
    cpu_s: float         # host CPU seconds the emulator used for the whole request
    vcpu_s: float        # host CPU seconds of the vCPU threads doing the work (busy cores)
    extra: dict = field(default_factory=dict)


class BenchError(Exception):
    pass


def _num(rx, text, what):
    m = re.search(rx, text)
    if not m:
        raise BenchError("no %s in:\n%s" % (what, text[-3000:]))
    return m.groups() if len(m.groups()) > 1 else m.group(1)


def check_prompt(prompt):
    """The shells take the prompt in double quotes on one line."""
    bad = [c for c in '"\\\r\n' if c in prompt]
    if bad:
        raise BenchError("the prompt may not contain %r" % "".join(bad))


class _QemuTarget:
    """A QEMU started by one of the run scripts with its console on a socket."""

    def __init__(self, name, work):
        self.name = name
        self.work = work
        self.proc = None
        self.con = None

    # Thread names (`CPU n/TCG`) let the benchmark read each vCPU's host CPU time.
    NAME_ARGS = ["-name", "bench,debug-threads=on"]

    def _launch(self, argv, timeout=60):
        sock = os.path.join(self.work, self.name + ".sock")
        self.qemu_log = open(os.path.join(self.work, self.name + ".qemu.log"), "w")
        self.proc = subprocess.Popen(argv, stdout=self.qemu_log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.con = Console(sock, os.path.join(self.work, self.name + ".console.log"), self.proc,
                           timeout)

    def qemu_pid(self):
        """The QEMU process (the run scripts exec it, so it is the child itself)."""
        return self.proc.pid

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.con:
            self.con.close()


class Partition(_QemuTarget):
    """guest-llm with the engine, under the hypervisor or (native=True) alone at EL1."""

    def __init__(self, root, work, model, icount=None, native=False, boot_timeout=600):
        super().__init__("native" if native else "partition", work)
        self.root, self.model, self.icount, self.native = root, model, icount, native
        self.boot_timeout = boot_timeout
        # The prompt at the start of a line: tagged by the console multiplexer under the
        # hypervisor, straight on the UART natively.
        self.prompt = rb"\nllm> " if native else rb"\n\[llm\] llm> "

    def start(self):
        argv = [os.path.join(self.root, "scripts/run.sh"), "--no-build",
                "--console-socket", os.path.join(self.work, self.name + ".sock"),
                "--datactl-socket", os.path.join(self.work, self.name + ".datactl.sock"),
                "--model", self.model]
        if self.icount is not None:
            argv += ["--icount", str(self.icount)]
        if self.native:
            argv += ["--native"]
        self._launch(argv + ["--"] + self.NAME_ARGS)
        self.con.expect(self.prompt.lstrip(b"\n"), self.boot_timeout)
        if not self.native:
            self.focus(b"2", b"llm")
        self.con.drain(1.0)
        freq = int(_num(rb"timer: (\d+) Hz", self.cmd("info").encode(), "timer frequency"))
        out = self.cmd("llmctl load", 600)
        if "llmctl load: ok" not in out:
            raise BenchError("%s: llmctl load failed:\n%s" % (self.name, out))
        self.load = out
        # A budget no request of the benchmark exhausts (50 s per 60 s, under the 85% bound):
        # every step is a charged step with a slice long enough for full prefill chunks.
        out = self.cmd("llmctl budget --period-ns 60000000000 --wcet-cycles %d" % (50 * freq))
        if "rejected" in out or "error" in out:
            raise BenchError("%s: llmctl budget failed:\n%s" % (self.name, out))

    def focus(self, key, name, tries=4):
        """Moves console input with Ctrl-A `key` and waits for the multiplexer's live marker;
        sends the keys again if it does not come (a key typed while the hypervisor's console
        core is busy can be late under heavy host load)."""
        for i in range(tries):
            self.con.send(b"\x01" + key)
            try:
                self.con.expect(rb"--- " + name + rb" live ---", 15)
                if i > 0:
                    # Let a late second banner (and its history replay) pass.
                    self.con.drain(5)
                return
            except ConsoleError:
                if i == tries - 1:
                    raise

    def cmd(self, line, timeout=120):
        self.con.send(line.encode() + b"\r")
        self.con.expect(re.escape(line.encode()), 60)        # the echo
        return self.con.expect(self.prompt, timeout)

    def exits(self):
        """The hypervisor's exit counters (monitor `vms`): the LLM VM's exits by cause and the
        exits and kick SGIs of its cores."""
        self.focus(b"0", b"monitor")
        self.con.send(b"vms\r")
        out = self.con.expect(rb"\n\[hv\] llm .*\n", 60)
        self.focus(b"2", b"llm")
        self.con.drain(0.3)
        per_core = re.search(r"core exits/kicks:((?: \d+=\d+/\d+)+)", out)
        llm = re.search(r"\n\[hv\] llm .*? exits=(\d+) \(([^)]*)\)", out)
        if not per_core or not llm:
            raise BenchError("cannot read the monitor's vms:\n" + out)
        c = {"exits": int(llm.group(1))}
        for kv in llm.group(2).split():
            k, v = kv.split("=")
            c[k] = int(v)
        for kv in per_core.group(1).split():
            core, ek = kv.split("=")
            e, k = ek.split("/")
            c["core%s" % core] = int(e)
            c["kicks%s" % core] = int(k)
        return c

    def run(self, threads, prompt, tokens, timeout):
        check_prompt(prompt)
        out = self.cmd("llmctl workers %d" % (threads - 1))
        if "error" in out or "usage" in out:
            raise BenchError("%s: %s" % (self.name, out))
        self.cmd("llmctl reset")
        before = None if self.native else self.exits()
        # The cores the pool uses: the loop's core, then the workers (partition: cores 1-3 of
        # sis_platform::partition; native: cores 0-2, run.sh --native gives it three).
        busy = list(range(0, 3) if self.native else range(1, 4))[:threads]
        cpu0, v0 = cpu_seconds(self.qemu_pid()), vcpu_seconds(self.qemu_pid(), busy)
        out = self.cmd('llminfer "%s" --max-tokens %d' % (prompt, tokens), timeout)
        cpu1, v1 = cpu_seconds(self.qemu_pid()), vcpu_seconds(self.qemu_pid(), busy)
        after = None if self.native else self.exits()
        if "llm: done job" not in out:
            raise BenchError("%s: inference failed:\n%s" % (self.name, out))
        st = self.cmd("llmctl status")
        f = lambda k: int(_num((k + r"=(\d+)").encode(), st.encode(), k))
        passes, dec_us = f("llm_decode_passes"), f("llm_decode_us")
        ptoks, pre_us = f("llm_prefill_tokens"), f("llm_prefill_us")
        text = re.search(r"\[LLM\] output: (.*)", out)
        extra = {"p50_us": f("llm_token_latency_p50_us"),
                 "p99_us": f("llm_token_latency_p99_us")}
        if before:
            d = {k: after[k] - before[k] for k in after}
            # Exits of the whole request (prefill and generation) by cause, per second of it.
            secs = (pre_us + dec_us) / 1e6
            extra["exits/s"] = "%.0f (%s)" % (d["exits"] / secs, " ".join(
                "%s=%.0f" % (k, d[k] / secs) for k in ("irq", "sysreg", "mmio", "hvc") if d.get(k)))
            extra["kicks/s"] = "%.0f" % (sum(d.get("kicks%d" % c, 0) for c in (1, 2, 3)) / secs)
        extra["text"] = text.group(1).strip() if text else ""
        return Result(
            prompt_tokens=ptoks, prompt_tps=ptoks / (pre_us / 1e6) if pre_us else 0.0,
            tokens=f("llm_tokens"), passes=passes,
            gen_tps=passes / (dec_us / 1e6) if dec_us else 0.0, cpu_s=cpu1 - cpu0,
            vcpu_s=v1 - v0, extra=extra)


class LinuxVm(_QemuTarget):
    """llama.cpp in the Linux reference VM (scripts/linux-vm/)."""

    PROMPT = rb"linux# "

    def __init__(self, root, work, model, smp, icount=None, llama_args="", boot_timeout=900):
        super().__init__("linux", work)
        self.root, self.model, self.smp, self.icount = root, model, smp, icount
        check_prompt(llama_args)
        self.llama_args = llama_args
        self.boot_timeout = boot_timeout
        self.prompt_text = None

    def start(self):
        argv = [os.path.join(self.root, "scripts/linux-vm/run.sh"),
                "--console-socket", os.path.join(self.work, self.name + ".sock"),
                "--model", self.model, "--smp", str(self.smp)]
        if self.icount is not None:
            argv += ["--icount", str(self.icount)]
        self._launch(argv + ["--"] + self.NAME_ARGS)
        out = self.con.expect(rb"linux-vm: (model \d+ bytes copied to tmpfs in [0-9.]+ s|no model disk)",
                              self.boot_timeout)
        if "no model disk" in out:
            raise BenchError("linux: the VM found no model disk:\n" + self.con.tail())
        self.copy_s = float(_num(r"copied to tmpfs in ([0-9.]+) s", out, "copy time"))
        self.con.expect(self.PROMPT, 120)
        self.con.drain(0.5)

    def cmd(self, line, timeout=120):
        self.con.send(line.encode() + b"\r")
        return self.con.expect(self.PROMPT, timeout)

    def _put_prompt(self, prompt):
        if prompt == self.prompt_text:
            return
        quoted = [prompt[i:i + 100].replace("'", "'\\''") for i in range(0, len(prompt), 100)]
        for i, part in enumerate(quoted):
            self.cmd("printf '%%s' '%s' %s /tmp/prompt" % (part, ">" if i == 0 else ">>"))
        size = int(_num(r"\n(\d+)\s", self.cmd("wc -c </tmp/prompt"), "prompt size"))
        if size != len(prompt.encode()):
            raise BenchError("linux: prompt file has %d bytes, expected %d" % (size, len(prompt.encode())))
        self.prompt_text = prompt

    def run(self, threads, prompt, tokens, timeout):
        check_prompt(prompt)
        self._put_prompt(prompt)
        # llama.cpp's threads move between the VM's vCPUs: count them all.
        cpus = list(range(self.smp))
        cpu0, v0 = cpu_seconds(self.qemu_pid()), vcpu_seconds(self.qemu_pid(), cpus)
        self.con.send(b"llama-run %d %d /tmp/prompt %s\r" % (threads, tokens, self.llama_args.encode()))
        out = self.con.expect(rb"llama-run: end rc=\d+", timeout)
        cpu1, v1 = cpu_seconds(self.qemu_pid()), vcpu_seconds(self.qemu_pid(), cpus)
        self.con.expect(self.PROMPT, 30)
        if "llama-run: end rc=0" not in out:
            raise BenchError("linux: llama-completion failed:\n" + out)
        pp_ms, ptoks = _num(r"prompt eval time = +([0-9.]+) ms / +(\d+) tokens", out, "prompt eval time")
        tg_ms, runs = _num(r"\beval time = +([0-9.]+) ms / +(\d+) runs", out, "eval time")
        load_ms = float(_num(r"load time = +([0-9.]+) ms", out, "load time"))
        ptoks, runs = int(ptoks), int(runs)
        return Result(
            prompt_tokens=ptoks, prompt_tps=ptoks / (float(pp_ms) / 1e3),
            tokens=tokens, passes=runs, gen_tps=runs / (float(tg_ms) / 1e3), cpu_s=cpu1 - cpu0,
            vcpu_s=v1 - v0, extra={"load_ms": load_ms})


class UserMode:
    """The engine as an aarch64 Linux process under qemu-aarch64 (user-mode emulation)."""

    name = "user"

    def __init__(self, binary, model, chunk):
        self.binary, self.model, self.chunk = binary, model, chunk

    def start(self):
        if not os.path.exists(self.binary):
            raise BenchError("no engine-bench binary at %s" % self.binary)

    def stop(self):
        pass

    def run(self, threads, prompt, tokens, timeout):
        if threads != 1:
            raise BenchError("user mode runs the engine on one thread only")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        p = subprocess.run(["qemu-aarch64", "-cpu", "cortex-a72", self.binary, self.model,
                            prompt, str(tokens), str(self.chunk)],
                           capture_output=True, text=True, timeout=timeout)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        if p.returncode != 0:
            raise BenchError("engine-bench failed (%d): %s%s" % (p.returncode, p.stdout, p.stderr))
        f = lambda k: _num(k + r"=([0-9.]+)", p.stdout, k)
        text = re.search(r'text="(.*)"', p.stdout)
        return Result(
            prompt_tokens=int(f("prompt_tokens")), prompt_tps=float(f("prompt_tps")),
            tokens=int(f("tokens")), passes=int(f("passes")), gen_tps=float(f("gen_tps")),
            cpu_s=cpu, vcpu_s=cpu, extra={"text": text.group(1) if text else ""})
