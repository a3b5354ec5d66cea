#!/usr/bin/env bash
# The LLM partition's inference speed against a reference measured in the same run, rounds
# interleaved: llama.cpp in a Linux VM on the same QEMU (default), the same guest kernel on bare
# QEMU without the hypervisor (--against native), or the engine under qemu-aarch64 user mode
# (--against user). Builds what is missing, then runs scripts/bench/llm_guest.py (--help there
# lists the options). See docs/llm-service.md and docs/engine.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

build=1
against=linux
model=""
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) build=0; shift ;;
        --against) against=${2:?--against needs linux, native or user}; args+=("$1" "$2"); shift 2 ;;
        --model) model=${2:?--model needs a path}; args+=("$1" "$2"); shift 2 ;;
        -h|--help)
            echo "usage: scripts/bench-llm-guest.sh [--no-build] [options of scripts/bench/llm_guest.py]"
            exec python3 "$root/scripts/bench/llm_guest.py" --help ;;
        *) args+=("$1"); shift ;;
    esac
done
if [ -z "$model" ]; then
    "$root/scripts/fetch-model.sh" >&2
elif [ ! -f "$model" ]; then
    echo "bench-llm-guest.sh: model '$model' not found" >&2
    exit 1
fi
if [ "$build" = 1 ]; then
    "$root/scripts/build.sh" >/dev/null
    case "$against" in
        linux) "$root/scripts/linux-vm/build.sh" ;;
        user)
            # The same build directory as guest-llm/engine/selftest-aarch64/run.sh.
            export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/target-engine-selftest}
            (cd "$root/guest-llm/engine/selftest-aarch64" &&
                cargo build --quiet --release --target aarch64-unknown-none --bin engine-bench)
            export SIS_ENGINE_BENCH="$CARGO_TARGET_DIR/aarch64-unknown-none/release/engine-bench"
            command -v qemu-aarch64 >/dev/null ||
                { echo "bench-llm-guest.sh: qemu-aarch64 missing (apt-get install qemu-user)" >&2; exit 1; } ;;
    esac
fi
exec python3 "$root/scripts/bench/llm_guest.py" "${args[@]}"
