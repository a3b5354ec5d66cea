#!/usr/bin/env bash
# Builds what is stale: the two guest kernels (aarch64-unknown-none), then the hypervisor
# (aarch64-unknown-none-softfloat) that embeds them. Prints the hypervisor image path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# A target dir of its own, so building the image from inside `cargo test` (the e2e tests) never
# waits on the outer cargo's lock.
target_dir=${SIS_IMAGE_TARGET_DIR:-$root/target/image}
export CARGO_TARGET_DIR=$target_dir
cargo build --quiet --release --target aarch64-unknown-none -p guest-ctl -p guest-llm >&2
SIS_GUEST_DIR="$target_dir/aarch64-unknown-none/release" \
    cargo build --quiet --release --target aarch64-unknown-none-softfloat -p hypervisor >&2
echo "$target_dir/aarch64-unknown-none-softfloat/release/hypervisor"
