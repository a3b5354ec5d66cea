#!/usr/bin/env bash
# The test command: formatting, lints (host and target builds), host unit and property tests of
# every library, and the QEMU end-to-end tests (tools/e2e/tests). QEMU must be installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
image_dir=${SIS_IMAGE_TARGET_DIR:-$root/target/image}

step() { printf '\n== %s\n' "$*"; }

step "rustfmt"
cargo fmt --all -- --check

step "clippy (host)"
cargo clippy --quiet --workspace --all-targets -- -D warnings

step "build the system image"
scripts/build.sh

step "clippy (target)"
CARGO_TARGET_DIR=$image_dir cargo clippy --quiet --release --target aarch64-unknown-none \
    -p guest-ctl -p guest-llm -- -D warnings
CARGO_TARGET_DIR=$image_dir SIS_GUEST_DIR=$image_dir/aarch64-unknown-none/release \
    cargo clippy --quiet --release --target aarch64-unknown-none-softfloat -p hypervisor -- -D warnings

step "engine on aarch64 (NEON, qemu-aarch64): kernels equal the portable ones, digests equal the host's"
guest-llm/engine/selftest-aarch64/run.sh --digests-only

step "tests (host and QEMU end-to-end)"
SIS_E2E_NO_BUILD=1 cargo test --workspace

step "guest kernels without the hypervisor (QEMU at EL1)"
SIS_GUEST_DIR=$image_dir/aarch64-unknown-none/release \
    cargo test -p guest-rt --test native_qemu -- --ignored
