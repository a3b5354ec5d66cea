#!/usr/bin/env bash
# Builds the Linux VM that serves as the LLM partition's speed reference (a measurement tool,
# not part of SIS): Debian's arm64 kernel and busybox, llama.cpp built statically for aarch64
# (armv8-a + NEON: what QEMU's cortex-a72 runs), and an initramfs holding them. See --help.
#
# Everything lands in the output directory (default models/cache/linux-vm, outside git); each
# step is skipped when its output exists. Needs: apt-get (Debian's mirrors), python3 -m pip
# (PyPI), and the packages gcc-aarch64-linux-gnu g++-aarch64-linux-gnu cmake cpio.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

usage() {
    cat <<'USAGE'
usage: scripts/linux-vm/build.sh [--out DIR] [--jobs N]
  --out DIR   output directory (default: $SIS_LINUX_VM_DIR or models/cache/linux-vm)
  --jobs N    parallel compile jobs for llama.cpp (default: nproc)
Outputs: DIR/Image (kernel), DIR/initramfs.cpio.gz, DIR/versions.txt.
USAGE
}

out=${SIS_LINUX_VM_DIR:-$root/models/cache/linux-vm}
jobs=$(nproc)
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out=${2:?--out needs a directory}; shift 2 ;;
        --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "linux-vm/build.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
done

# llama.cpp comes from the llama-cpp-python sdist (its vendor/llama.cpp), the same release the
# project's host reference uses (scripts/reference/).
LLAMA_PY_VERSION=0.3.36
LLAMA_PY_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e

need() {
    local missing=()
    for tool in "$@"; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "linux-vm/build.sh: missing ${missing[*]} (apt-get install --no-install-recommends gcc-aarch64-linux-gnu g++-aarch64-linux-gnu cmake cpio)" >&2
        exit 1
    fi
}
need apt-get dpkg-deb python3 aarch64-linux-gnu-gcc aarch64-linux-gnu-g++ cmake cpio gzip
mkdir -p "$out"
out=$(cd "$out" && pwd)

# --- 1. Debian arm64 packages, with a private apt configuration (the host's dpkg and apt
# state are left alone: no foreign architecture is added).
apt_dir=$out/apt
apt_opts=(
    -o "Dir::State=$apt_dir/state" -o "Dir::Cache=$apt_dir/cache"
    -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
    -o "Dir::Etc::Preferences=$apt_dir/preferences" -o "Dir::Etc::PreferencesParts=$apt_dir/preferences.d"
    -o "APT::Architecture=arm64" -o "APT::Architectures::=arm64" -o "Debug::NoLocking=1"
    -o "APT::Sandbox::User=root"
)
pkg_dir=$out/pkg
if [ ! -f "$pkg_dir/.done" ]; then
    echo "linux-vm: fetching Debian arm64 packages" >&2
    rm -rf "$apt_dir" "$pkg_dir"
    mkdir -p "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial" \
        "$apt_dir/sources.list.d" "$apt_dir/preferences.d" "$pkg_dir/debs" "$pkg_dir/root"
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -f "$keyring" ] || { echo "linux-vm/build.sh: $keyring missing (package debian-archive-keyring)" >&2; exit 1; }
    cat >"$apt_dir/sources.list" <<SOURCES
deb [arch=arm64 signed-by=$keyring] http://deb.debian.org/debian bookworm main
deb [arch=arm64 signed-by=$keyring] http://deb.debian.org/debian-security bookworm-security main
SOURCES
    apt-get "${apt_opts[@]}" -qq update
    # linux-image-arm64 is the metapackage; its dependency names the current kernel package.
    kpkg=$(apt-cache "${apt_opts[@]}" depends linux-image-arm64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-arm64\)$/\1/p' | head -n1)
    [ -n "$kpkg" ] || { echo "linux-vm/build.sh: cannot resolve linux-image-arm64" >&2; exit 1; }
    (cd "$pkg_dir/debs" && apt-get "${apt_opts[@]}" -qq download "$kpkg" busybox-static)
    for deb in "$pkg_dir"/debs/*.deb; do
        dpkg-deb -x "$deb" "$pkg_dir/root"
    done
    touch "$pkg_dir/.done"
fi
kernel=$(ls "$pkg_dir"/root/boot/vmlinuz-* | head -n1)
kver=${kernel##*/vmlinuz-}
moddir=$pkg_dir/root/lib/modules/$kver/kernel
for m in drivers/virtio/virtio_mmio.ko drivers/block/virtio_blk.ko; do
    [ -f "$moddir/$m" ] || { echo "linux-vm/build.sh: $m missing from $kver" >&2; exit 1; }
done
cp -f "$kernel" "$out/Image"

# --- 2. llama.cpp, static aarch64.
src_dir=$out/llama-src
if [ ! -f "$src_dir/.done" ]; then
    echo "linux-vm: fetching llama-cpp-python $LLAMA_PY_VERSION (sdist) from PyPI" >&2
    rm -rf "$src_dir"
    mkdir -p "$src_dir"
    dl=$(mktemp -d)
    python3 -m pip download --quiet --no-deps --no-binary :all: --dest "$dl" \
        "llama-cpp-python==$LLAMA_PY_VERSION"
    sdist="$dl/llama_cpp_python-$LLAMA_PY_VERSION.tar.gz"
    got=$(sha256sum "$sdist" | cut -d' ' -f1)
    if [ "$got" != "$LLAMA_PY_SHA256" ]; then
        echo "linux-vm/build.sh: $sdist has sha256 $got, expected $LLAMA_PY_SHA256" >&2
        exit 1
    fi
    tar -xzf "$sdist" -C "$src_dir" --strip-components=3 "llama_cpp_python-$LLAMA_PY_VERSION/vendor/llama.cpp"
    rm -rf "$dl"
    touch "$src_dir/.done"
fi
bld=$out/llama-build
bins=(llama-bench llama-completion)
if [ ! -x "$bld/bin/llama-completion" ] || [ ! -x "$bld/bin/llama-bench" ]; then
    echo "linux-vm: building llama.cpp for aarch64 (static, armv8-a; takes a while)" >&2
    cmake -S "$src_dir" -B "$bld" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
        -DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++ \
        -DCMAKE_EXE_LINKER_FLAGS=-static -DBUILD_SHARED_LIBS=OFF \
        -DGGML_NATIVE=OFF -DGGML_CPU_ARM_ARCH=armv8-a -DGGML_OPENMP=OFF -DGGML_BACKEND_DL=OFF \
        -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF >"$out/cmake.log" 2>&1 \
        || { echo "linux-vm/build.sh: cmake failed, see $out/cmake.log" >&2; exit 1; }
    cmake --build "$bld" -j "$jobs" --target "${bins[@]}" >"$out/build.log" 2>&1 \
        || { echo "linux-vm/build.sh: llama.cpp build failed, see $out/build.log" >&2; exit 1; }
fi

# --- 3. initramfs: busybox, the two virtio modules, llama.cpp, /init, llama-run.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,tmp,model,lib/modules}
cp "$pkg_dir/root/bin/busybox" "$stage/bin/busybox"
for m in drivers/virtio/virtio_mmio.ko drivers/block/virtio_blk.ko; do
    cp "$moddir/$m" "$stage/lib/modules/"
done
for b in "${bins[@]}"; do
    aarch64-linux-gnu-strip -o "$stage/bin/$b" "$bld/bin/$b"
done
install -m 755 "$root/scripts/linux-vm/init" "$stage/init"
install -m 755 "$root/scripts/linux-vm/llama-run" "$stage/bin/llama-run"
(cd "$stage" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | gzip -6) >"$out/initramfs.cpio.gz.tmp"
mv -f "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"
{
    for deb in "$pkg_dir"/debs/*.deb; do
        dpkg-deb -f "$deb" Package Version | sed 's/^[^:]*: //' | paste -sd' '
    done
    echo "llama-cpp-python $LLAMA_PY_VERSION (vendor/llama.cpp), static aarch64, -march=armv8-a"
} >"$out/versions.txt"
echo "linux-vm: $out/Image $out/initramfs.cpio.gz" >&2
cat "$out/versions.txt" >&2
