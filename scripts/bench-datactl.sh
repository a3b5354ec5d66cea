#!/usr/bin/env bash
# Benchmarks host control end to end: boots SIS (no model) once with the sis.datactl port on a
# UNIX socket and once on TCP, takes a SUBMIT token from the ctl> shell (`ctlembed submit`),
# and runs datactl-bench against the real guest: frames/s and ACK latency p50/p99/max for
# frames answered by the frame layer alone (`unsupported`) and frames that go through auth,
# audit and the LLM path (`poll`). See --help.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

usage() {
    cat <<'USAGE'
usage: scripts/bench-datactl.sh [options]

  --frames N      frames measured per run (default 2000)
  --window W      frames in flight at once (default 1; try 16)
  --port P        TCP port for the TCP run (default 7777)
  --only unix|tcp run one transport only
  --json          datactl-bench JSON lines instead of text
  --no-build      use the last build (scripts/build.sh and datactl-bench)
  -h, --help      this text

Environment: SIS_IMAGE_TARGET_DIR as for scripts/run.sh; CARGO_TARGET_DIR for datactl-bench.
USAGE
}

frames=2000
window=1
port=7777
only=""
json=()
build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --frames) frames=${2:?--frames needs a number}; shift 2 ;;
        --window) window=${2:?--window needs a number}; shift 2 ;;
        --port) port=${2:?--port needs a number}; shift 2 ;;
        --only) only=${2:?--only needs unix or tcp}; shift 2 ;;
        --json) json=(--json); shift ;;
        --no-build) build=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench-datactl.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$only" in ""|unix|tcp) ;; *) echo "bench-datactl.sh: --only takes unix or tcp" >&2; exit 2 ;; esac

target=${CARGO_TARGET_DIR:-$root/target}
if [ "$build" = 1 ]; then
    "$root/scripts/build.sh" >/dev/null
    CARGO_TARGET_DIR=$target cargo build --quiet --release -p datactl --bin datactl-bench >&2
fi
bench="$target/release/datactl-bench"
[ -x "$bench" ] || { echo "bench-datactl.sh: no $bench (run without --no-build)" >&2; exit 1; }

work=$(mktemp -d /tmp/sis-bench.XXXXXX)
qemu_pid=""
cleanup() {
    if [ -n "$qemu_pid" ]; then
        kill -- "-$qemu_pid" 2>/dev/null || kill "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Waits for VCON: READY and the ctl> prompt on the console socket, then prints the SUBMIT
# embedded token from `ctlembed submit`. The connection is closed afterwards (QEMU goes on).
token_from_console() {
    python3 - "$1" <<'PY'
import re, socket, sys, time
s = socket.socket(socket.AF_UNIX)
deadline = time.time() + 60
while True:
    try:
        s.connect(sys.argv[1]); break
    except OSError:
        if time.time() > deadline: sys.exit("console socket never appeared")
        time.sleep(0.1)
s.settimeout(0.2)
buf = b""
def wait_for(pat, t):
    global buf
    end = time.time() + t
    while time.time() < end:
        m = re.search(pat, buf)
        if m:
            buf = buf[m.end():]
            return m
        try:
            d = s.recv(65536)
            if not d: break
            buf += d
        except socket.timeout:
            pass
    sys.exit("timed out waiting for %r; last output:\n%s" % (pat, buf[-2000:].decode("latin1")))
wait_for(rb"VCON: READY", 60)
wait_for(rb"ctl> ", 30)
s.sendall(b"\x011")
time.sleep(0.3)
s.sendall(b"ctlembed submit\r")
m = wait_for(rb"EMBED TOKEN: (0x[0-9a-f]+)", 20)
print(m.group(1).decode())
PY
}

run_one() {
    local transport=$1
    local con="$work/console-$transport.sock" sock="$work/datactl.sock"
    local env=() target_args=()
    if [ "$transport" = tcp ]; then
        env=(DATACTL_TCP=1 "DATACTL_PORT=$port")
        target_args=(--tcp "127.0.0.1:$port")
    else
        target_args=(--socket "$sock")
    fi
    env "${env[@]}" setsid "$root/scripts/run.sh" --no-build --no-model \
        --console-socket "$con" --datactl-socket "$sock" >"$work/qemu-$transport.log" 2>&1 &
    qemu_pid=$!
    local token
    token=$(token_from_console "$con") || { cat "$work/qemu-$transport.log" >&2; exit 1; }
    echo "== $transport: $frames frames, window $window (SUBMIT token from ctlembed) =="
    "$bench" "${target_args[@]}" "${json[@]}" --kind unsupported --frames "$frames" --window "$window"
    SIS_TOKEN=$token "$bench" "${target_args[@]}" "${json[@]}" --kind poll --frames "$frames" --window "$window"
    kill -- "-$qemu_pid" 2>/dev/null || kill "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
    qemu_pid=""
}

[ "$only" = tcp ] || run_one unix
[ "$only" = unix ] || run_one tcp
