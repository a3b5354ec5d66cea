#!/usr/bin/env bash
# The engine against llama.cpp on one model, interleaved rounds (engine, llama.cpp, engine,
# ...), printing each round and the min / median / max of the ratios (engine / llama.cpp,
# above 1 = engine faster). Speed goals are these ratios, measured in one run.
#
#   scripts/bench-engine.sh [--model PATH] [--rounds N] [--threads N]
#       x86-64 host: `llm-bench` (engine, then llama-cpp-python in the same process tree).
#   scripts/bench-engine.sh --aarch64 [--model PATH] [--rounds N] [--tokens N]
#       qemu-aarch64 -cpu cortex-a72, 1 thread: the self-test's `engine-bench` (NEON)
#       against the static aarch64 `llama-bench` that scripts/linux-vm/build.sh builds.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
model=$root/models/cache/SmolLM2-135M-Instruct.Q4_1.gguf
rounds=3 threads=1 tokens=16 aarch64=0
while [ $# -gt 0 ]; do
    case "$1" in
        --model) model=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --tokens) tokens=$2; shift 2 ;;
        --aarch64) aarch64=1; shift ;;
        *) echo "bench-engine.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[ -f "$model" ] || { echo "bench-engine.sh: model '$model' not found (scripts/fetch-model.sh)" >&2; exit 1; }

# min / median / max of the numbers on stdin.
stats() { sort -g | awk '{v[NR]=$1} END {if (NR) printf "%.2f / %.2f / %.2f", v[1], v[int((NR+1)/2)], v[NR]}'; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if [ "$aarch64" = 0 ]; then
    (cd "$root" && cargo build --quiet --release -p sis-engine --bin llm-bench)
    bench=$root/target/release/llm-bench
    for r in $(seq "$rounds"); do
        "$bench" --model "$model" --threads "$threads" --runs 1 >"$out/r" 2>&1 ||
            { cat "$out/r" >&2; exit 1; }
        e=$(awk '/^engine /{print $4, $7}' "$out/r")
        l=$(awk '/^llama.cpp /{print $4, $7}' "$out/r")
        [ -n "$l" ] || { cat "$out/r" >&2; echo "bench-engine.sh: no llama.cpp result (venv?)" >&2; exit 1; }
        echo "round $r: engine pp/tg $e tok/s, llama.cpp $l"
        echo "$e $l" >>"$out/all"
    done
    label="x86-64 host, $threads thread(s)"
else
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/target-engine-selftest}
    (cd "$root/guest-llm/engine/selftest-aarch64" &&
        cargo build --quiet --release --target aarch64-unknown-none --bin engine-bench)
    eb=$CARGO_TARGET_DIR/aarch64-unknown-none/release/engine-bench
    lb=$root/models/cache/linux-vm/llama-build/bin/llama-bench
    [ -x "$lb" ] || { echo "bench-engine.sh: $lb missing (scripts/linux-vm/build.sh)" >&2; exit 1; }
    prompt="The history of the printing press begins in the fifteenth century, when Johannes Gutenberg combined movable metal type"
    for r in $(seq "$rounds"); do
        qemu-aarch64 -cpu cortex-a72 "$eb" "$model" "$prompt" "$tokens" >"$out/e" 2>&1 ||
            { cat "$out/e" >&2; exit 1; }
        pt=$(sed -n 's/.*prompt_tokens=\([0-9]*\).*/\1/p' "$out/e")
        e=$(sed -n 's/.*prompt_tps=\([0-9.]*\).*gen_tps=\([0-9.]*\).*/\1 \2/p' "$out/e")
        qemu-aarch64 -cpu cortex-a72 "$lb" -m "$model" -p "$pt" -n "$tokens" -t 1 -r 1 >"$out/l" 2>&1 ||
            { cat "$out/l" >&2; exit 1; }
        l="$(awk -F'|' "/ pp$pt /{gsub(/ /,\"\",\$8); split(\$8,a,\"±\"); printf \"%s \", a[1]}" "$out/l")$(awk -F'|' "/ tg$tokens /{gsub(/ /,\"\",\$8); split(\$8,a,\"±\"); print a[1]}" "$out/l")"
        echo "round $r: engine pp/tg $e tok/s, llama.cpp $l"
        echo "$e $l" >>"$out/all"
    done
    label="qemu-aarch64 -cpu cortex-a72, 1 thread, $pt-token prompt, $tokens generated"
fi
echo "$label, $(basename "$model"), $rounds rounds (min / median / max):"
echo "  engine    prompt $(awk '{print $1}' "$out/all" | stats) tok/s, generation $(awk '{print $2}' "$out/all" | stats) tok/s"
echo "  llama.cpp prompt $(awk '{print $3}' "$out/all" | stats) tok/s, generation $(awk '{print $4}' "$out/all" | stats) tok/s"
echo "  ratio     prompt $(awk '{print $1 / $3}' "$out/all" | stats)x, generation $(awk '{print $2 / $4}' "$out/all" | stats)x"
