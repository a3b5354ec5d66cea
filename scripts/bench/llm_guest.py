"""The LLM partition's inference speed against a reference measured in the same run.

Boots the partition (SIS under the hypervisor) and the reference once, then runs rounds of the
same greedy generation (same model, prompt and token count) on each, interleaved (partition,
reference, partition, reference, ...) for every vCPU/thread count, and prints prompt and
generation tokens/s of each side as min/median/max over the rounds and their ratio (partition /
reference, paired by round), the host CPU each request cost (all of QEMU, and its vCPU threads
doing the work: far steadier than the wall clock on a loaded host), and for the partition the
hypervisor's exits per second by cause. References (--against):

  linux   llama.cpp in a Linux VM on the same QEMU machine model, same thread count
          (scripts/linux-vm/); the partition's anchor
  native  the same guest-llm kernel alone on bare QEMU at EL1 (scripts/run.sh --native): what the
          hypervisor costs
  user    the same engine as an aarch64 Linux process under qemu-aarch64 (1 thread): what
          full-system emulation costs

Run through scripts/bench-llm-guest.sh, which builds what is needed first.
"""
import argparse
import os
import signal
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from targets import BenchError, LinuxVm, Partition, UserMode  # noqa: E402
from vmconsole import ConsoleError  # noqa: E402

DEFAULT_PROMPT = ("The history of the printing press begins in the fifteenth century, when "
                  "Johannes Gutenberg combined movable metal type, oil-based ink and a wooden press")


def spread(xs):
    return min(xs), statistics.median(xs), max(xs)


def fmt3(xs, digits=2):
    lo, med, hi = spread(xs)
    return "%.*f / %.*f / %.*f" % (digits, lo, digits, med, digits, hi)


def main():
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    ap = argparse.ArgumentParser(prog="bench-llm-guest.sh", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(root, "models/cache/SmolLM2-135M-Instruct.Q4_1.gguf"),
                    help="GGUF model both sides load (default: SmolLM2-135M-Instruct Q4_1)")
    ap.add_argument("--against", choices=["linux", "native", "user"], default="linux",
                    help="the reference (default linux)")
    ap.add_argument("--vcpus", default=None,
                    help="comma-separated vCPU/thread counts (default 1,3; user: 1)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per vCPU count (default 3)")
    ap.add_argument("--tokens", type=int, default=16, help="tokens generated per request")
    ap.add_argument("--prompt", default=DEFAULT_PROMPT, help="prompt text (plain, no chat template)")
    ap.add_argument("--icount", type=int, default=None,
                    help="run both sides under -icount shift=N (virtual time)")
    ap.add_argument("--timeout", type=int, default=3600, help="bound on one request, s")
    ap.add_argument("--llama-args", default="",
                    help="extra llama-completion options in the Linux VM (e.g. '--poll 0')")
    ap.add_argument("--engine-bench", default=os.environ.get(
        "SIS_ENGINE_BENCH", "/tmp/target-engine-selftest/aarch64-unknown-none/release/engine-bench"),
        help="the user-mode engine binary (selftest-aarch64's engine-bench)")
    ap.add_argument("--keep", action="store_true", help="keep the logs directory")
    a = ap.parse_args()
    vcpus = [int(v) for v in (a.vcpus or ("1" if a.against == "user" else "1,3")).split(",")]
    if any(v < 1 or v > 3 for v in vcpus):
        sys.exit("bench-llm-guest.sh: --vcpus must be between 1 and 3 (the partition's cores)")
    if a.against == "user" and vcpus != [1]:
        sys.exit("bench-llm-guest.sh: --against user measures 1 thread only")
    if a.rounds < 1 or a.tokens < 2:
        sys.exit("bench-llm-guest.sh: need --rounds >= 1 and --tokens >= 2")
    if a.against == "user" and a.icount is not None:
        sys.exit("bench-llm-guest.sh: qemu-aarch64 has no -icount; --against user runs in real time")

    # A SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the QEMUs are always stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = tempfile.mkdtemp(prefix="sis-bench-llm.")
    sides = [Partition(root, work, a.model, a.icount)]
    if a.against == "linux":
        # The VM has the partition's three vCPUs whatever the thread count, as the partition
        # keeps its three cores when it uses fewer (sis_platform::partition: cores 1-3).
        sides.append(LinuxVm(root, work, a.model, 3, a.icount, a.llama_args))
    elif a.against == "native":
        sides.append(Partition(root, work, a.model, a.icount, native=True))
    else:
        # The partition's prefill chunk (guest-llm's PREFILL_CHUNK).
        sides.append(UserMode(a.engine_bench, a.model, 4))
    part, ref = sides
    clock = "virtual time, -icount shift=%d" % a.icount if a.icount is not None else "real time"
    print("model %s, prompt %r, %d tokens per request, %d rounds (%s)"
          % (os.path.basename(a.model), a.prompt, a.tokens, a.rounds, clock))
    print("partition vs %s; logs in %s" % (ref.name, work), flush=True)
    res = {(s.name, v): [] for s in sides for v in vcpus}
    ok = False
    try:
        for s in sides:
            t = time.time()
            s.start()
            print("%s: up in %.0f s" % (s.name, time.time() - t)
                  + (", model copied into the VM's tmpfs in %.1f s" % s.copy_s if hasattr(s, "copy_s") else ""),
                  flush=True)
        for r in range(a.rounds):
            for v in vcpus:
                for s in sides:
                    x = s.run(v, a.prompt, a.tokens, a.timeout)
                    res[(s.name, v)].append(x)
                    print("round %d, %d vCPU%s, %-9s: prompt %3d tok %7.3f tok/s, generation %2d passes %7.3f tok/s, host CPU %6.1f s (vCPUs %6.1f s)%s"
                          % (r + 1, v, "s" if v > 1 else " ", s.name, x.prompt_tokens, x.prompt_tps,
                             x.passes, x.gen_tps, x.cpu_s, x.vcpu_s,
                             "".join(", %s %s" % kv for kv in x.extra.items() if kv[0] != "text")),
                          flush=True)
        ok = True
    except (BenchError, ConsoleError, OSError) as e:
        print("bench-llm-guest.sh: %s" % e, file=sys.stderr)
    finally:
        for s in sides:
            s.stop()
    if not ok:
        print("logs kept in %s" % work, file=sys.stderr)
        sys.exit(1)

    print()
    print("min / median / max over %d rounds (%s); speed ratio = partition / %s, CPU ratio ="
          " %s / partition (both: above 1 = partition better), paired by round"
          % (a.rounds, clock, ref.name, ref.name))
    for v in vcpus:
        p, q = res[(part.name, v)], res[(ref.name, v)]
        print("== %d vCPU%s (%s: %d thread%s)" % (v, "s" if v > 1 else "", ref.name, v, "s" if v > 1 else ""))
        for label, key in (("prompt", "prompt_tps"), ("generation", "gen_tps")):
            pv = [getattr(x, key) for x in p]
            qv = [getattr(x, key) for x in q]
            ratios = [x / y if y else float("nan") for x, y in zip(pv, qv)]
            print("  %-10s tok/s  partition %s   %s %s   ratio %s"
                  % (label, fmt3(pv, 3), ref.name, fmt3(qv, 3), fmt3(ratios)))
        # Host CPU time is far less sensitive to other load on the host than the wall clock:
        # the ratio is reference / partition, so above 1 means the partition needs less.
        for label, key in (("host CPU / request", "cpu_s"), ("vCPU CPU / request", "vcpu_s")):
            pv = [getattr(x, key) for x in p]
            qv = [getattr(x, key) for x in q]
            ratios = [y / x if x else float("nan") for x, y in zip(pv, qv)]
            print("  %-18s    partition %s s   %s %s s   ratio %s"
                  % (label, fmt3(pv, 1), ref.name, fmt3(qv, 1), fmt3(ratios)))
        if p[0].prompt_tokens != q[0].prompt_tokens:
            print("  note: prompt tokens differ: partition %d, %s %d"
                  % (p[0].prompt_tokens, ref.name, q[0].prompt_tokens))
        if "p50_us" in p[0].extra:
            print("  partition per-token latency p50 %s us, p99 %s us (last round)"
                  % (p[-1].extra["p50_us"], p[-1].extra["p99_us"]))
    texts = {s.name: res[(s.name, vcpus[0])][0].extra.get("text") for s in sides}
    for name, text in texts.items():
        if text:
            print("%s text: %s" % (name, text))
    if not a.keep:
        for f in os.listdir(work):
            os.unlink(os.path.join(work, f))
        os.rmdir(work)


if __name__ == "__main__":
    main()
