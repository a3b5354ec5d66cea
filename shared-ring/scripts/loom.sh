#!/bin/sh
# Loom model tests of the shared-ring protocols (SPSC ring, init/attach, audit seqlock).
# Usage: shared-ring/scripts/loom.sh   (uses its own target dir; the --cfg loom build is separate)
set -eu
cd "$(dirname "$0")/../.."
export RUSTFLAGS="--cfg loom ${RUSTFLAGS:-}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
exec cargo test -p shared-ring --release --test loom "$@"
