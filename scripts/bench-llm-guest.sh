#!/usr/bin/env bash
# In-guest inference benchmark: boots SIS, loads a model in the LLM partition and runs the same
# greedy generation with the engine on 1 vCPU (the scheduler loop's core alone) and on 3 vCPUs
# (plus the two worker cores), reading the guest's own measurements from `llmctl status`:
# generated tokens/s and per-token latency p50/p99. Run once in real time (the vCPU ratio) and
# once under -icount (virtual time follows executed instructions: repeatable latencies).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

usage() {
    cat <<'USAGE'
usage: scripts/bench-llm-guest.sh [--model PATH] [--tokens N] [--prompt TEXT] [--icount SHIFT]
                                  [--no-icount] [--no-build]
  --model PATH     model file (default: SmolLM2-135M-Instruct Q4_1 from models/cache)
  --tokens N       tokens to generate per run (default 16)
  --prompt TEXT    prompt (default: the seed's "why was op B slower than op A?")
  --icount SHIFT   -icount shift for the latency run (default 3)
  --no-icount      skip the -icount run
  --no-build       use the last build
USAGE
}

model="$root/models/cache/SmolLM2-135M-Instruct.Q4_1.gguf"
tokens=16
prompt="why was op B slower than op A?"
icount=3
do_icount=1
build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --model) model=${2:?--model needs a path}; shift 2 ;;
        --tokens) tokens=${2:?--tokens needs a number}; shift 2 ;;
        --prompt) prompt=${2:?--prompt needs text}; shift 2 ;;
        --icount) icount=${2:?--icount needs a number}; shift 2 ;;
        --no-icount) do_icount=0; shift ;;
        --no-build) build=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-llm-guest.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
case "$tokens" in ''|*[!0-9]*) echo "bench-llm-guest.sh: --tokens must be a number" >&2; exit 2 ;; esac
[ -f "$model" ] || [ "$model" != "$root/models/cache/SmolLM2-135M-Instruct.Q4_1.gguf" ] \
    || "$root/scripts/fetch-model.sh" >&2
[ -f "$model" ] || { echo "bench-llm-guest.sh: model '$model' not found" >&2; exit 1; }
if [ "$build" = 1 ]; then
    "$root/scripts/build.sh" >/dev/null
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sis-bench-llm.XXXXXX")
trap 'rm -rf "$work"' EXIT

# One boot: for each worker count, reset the figures, generate, read `llmctl status`.
# Prints "workers tok_s p50_us p99_us" lines.
bench_boot() {
    local icount_arg=("$@")
    python3 - "$root" "$work" "$model" "$tokens" "$prompt" "${icount_arg[@]}" <<'PY'
import os, re, signal, socket, subprocess, sys, time
root, work, model, tokens, prompt = sys.argv[1:6]
extra = sys.argv[6:]
sock = os.path.join(work, "console.sock")
log = open(os.path.join(work, "qemu.log"), "w")
qemu = subprocess.Popen(
    [root + "/scripts/run.sh", "--no-build", "--console-socket", sock,
     "--datactl-socket", os.path.join(work, "datactl.sock"), "--model", model] + extra,
    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
def fail(msg):
    os.killpg(qemu.pid, signal.SIGKILL)
    sys.exit("bench-llm-guest.sh: " + msg + " (console log: " + os.path.join(work, "console.log") + ")")
for _ in range(300):
    if os.path.exists(sock):
        break
    time.sleep(0.1)
s = socket.socket(socket.AF_UNIX)
s.connect(sock)
s.settimeout(0.5)
console = open(os.path.join(work, "console.log"), "wb")
pending = b""
def wait(pattern, timeout):
    global pending
    t0 = time.time()
    while time.time() - t0 < timeout:
        m = re.search(pattern, pending)
        if m:
            out = pending[:m.end()]
            pending = pending[m.end():]
            return out.decode("utf-8", "replace")
        try:
            b = s.recv(65536)
        except socket.timeout:
            continue
        if not b:
            break
        console.write(b)
        console.flush()
        pending += b
    fail("timed out waiting for %r" % pattern)
def cmd(line, timeout=1800):
    s.sendall(line.encode() + b"\r")
    wait(re.escape(line.encode()), 60)          # the echo
    return wait(rb"\n\[llm\] llm> ", timeout)
wait(rb"\[llm\] llm> ", 120)
s.sendall(b"\x012")          # console focus: guest-llm (its history is replayed)
t0 = time.time()
while time.time() - t0 < 2:
    try:
        b = s.recv(65536)
        console.write(b)
    except socket.timeout:
        pass
pending = b""
out = cmd("llmctl load --wcet-cycles 53125000")   # 850 ms per 1 s period: never throttled
if "llmctl load: ok" not in out:
    fail("load failed:\n" + out)
for workers in (0, 2):
    cmd("llmctl workers %d" % workers)
    cmd("llmctl reset")
    out = cmd('llminfer "%s" --max-tokens %s' % (prompt, tokens))
    if "llm: done job" not in out:
        fail("inference failed:\n" + out)
    st = cmd("llmctl status")
    f = lambda k: re.search(k + r"=([0-9.]+)", st).group(1)
    print(workers + 1, f("llm_tokens_per_sec"), f("llm_token_latency_p50_us"),
          f("llm_token_latency_p99_us"), f("llm_tokens"), flush=True)
os.killpg(qemu.pid, signal.SIGTERM)
qemu.wait()
PY
}

echo "model: $model, $tokens tokens per run, prompt: \"$prompt\""
echo "== real time (MTTCG: each vCPU is a host thread; host load affects the numbers)"
bench_boot | tee "$work/real.txt" | while read -r v tps p50 p99 n; do
    echo "vCPUs $v: $tps tokens/s ($n tokens), per-token latency p50 $p50 us p99 $p99 us"
done
read -r _ one _ < <(sed -n 1p "$work/real.txt")
read -r _ three _ < <(sed -n 2p "$work/real.txt")
python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print('ratio 3 vCPUs / 1 vCPU: %.2fx' % (b / a if a else float('nan')))" "$one" "$three"
if [ "$do_icount" = 1 ]; then
    echo "== -icount shift=$icount (virtual time; vCPUs run round-robin on one host thread)"
    bench_boot --icount "$icount" | while read -r v tps p50 p99 n; do
        echo "vCPUs $v: $tps tokens/s virtual ($n tokens), per-token latency p50 $p50 us p99 $p99 us"
    done
fi
