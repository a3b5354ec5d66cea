#!/usr/bin/env bash
# Builds what is stale: the guest kernels the partition table names (aarch64-unknown-none), then
# the hypervisor (aarch64-unknown-none-softfloat) that embeds them. Writes layout.env (the
# addresses run.sh needs) next to them. Prints the hypervisor image path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# A target dir of its own, so building the image from inside `cargo test` (the e2e tests) never
# waits on the outer cargo's lock.
target_dir=${SIS_IMAGE_TARGET_DIR:-$root/target/image}
export CARGO_TARGET_DIR=$target_dir
# The partition table says which images to build and where run.sh puts the model
# (platform/examples/layout.rs).
layout() { cargo run --quiet -p sis-platform --example layout -- "$@"; }
mkdir -p "$target_dir"
layout env >"$target_dir/layout.env.tmp"
mv -f "$target_dir/layout.env.tmp" "$target_dir/layout.env"
guests=()
for image in $(layout images); do
    guests+=(-p "$image")
done
cargo build --quiet --release --target aarch64-unknown-none "${guests[@]}" >&2
SIS_GUEST_DIR="$target_dir/aarch64-unknown-none/release" \
    cargo build --quiet --release --target aarch64-unknown-none-softfloat -p hypervisor >&2
echo "$target_dir/aarch64-unknown-none-softfloat/release/hypervisor"
