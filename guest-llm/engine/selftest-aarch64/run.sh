#!/usr/bin/env bash
# Build the aarch64 self-test, run it under qemu-aarch64 (Debian package qemu-user) and
# compare its digests with models/test/digests.txt, which the host test
# `determinism::digests_equal_aarch64_golden` also checks. `--update` rewrites the file.
# It also measures the real models found in models/cache; `--digests-only` skips that
# (scripts/test.sh).
set -euo pipefail
mode=${1:-}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/target-engine-selftest}
command -v qemu-aarch64 >/dev/null || { echo "selftest: qemu-aarch64 missing (apt-get install --no-install-recommends qemu-user)" >&2; exit 1; }
(cd "$here" && cargo build --quiet --release --target aarch64-unknown-none)
# The self-test reads models/cache/* relative to its working directory: an empty one
# has none.
cwd=$root
if [ "$mode" = "--digests-only" ]; then
    cwd=$(mktemp -d)
    trap 'rmdir "$cwd"' EXIT
fi
out=$(cd "$cwd" && qemu-aarch64 -cpu cortex-a72 "$CARGO_TARGET_DIR/aarch64-unknown-none/release/sis-engine-selftest")
echo "$out"
grep -q "^neon-kernels match$" <<<"$out" || { echo "selftest: NEON kernels differ from portable" >&2; exit 1; }
digests=$(grep -v -e '^neon-kernels' -e '^smollm2' -e '^gemma3' <<<"$out")
if [ "$mode" = "--update" ]; then
    echo "$digests" > "$root/models/test/digests.txt"
    echo "selftest: wrote models/test/digests.txt"
elif [ "$digests" = "$(cat "$root/models/test/digests.txt")" ]; then
    echo "selftest: aarch64 digests equal models/test/digests.txt"
else
    echo "selftest: aarch64 digests differ from models/test/digests.txt" >&2
    exit 1
fi
