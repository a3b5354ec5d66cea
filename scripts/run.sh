#!/usr/bin/env bash
# The one place that knows the QEMU command line: builds what is stale, then boots the SIS
# hypervisor with both guests on QEMU virt. See --help.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

usage() {
    cat <<'USAGE'
usage: scripts/run.sh [options] [-- extra qemu arguments]

Boots SIS on QEMU virt (4 cores, 2 GiB, GICv3, EL2). The console is multiplexed:
Ctrl-A 1 = guest-ctl, Ctrl-A 2 = guest-llm, Ctrl-A 0 = hypervisor monitor (hv>),
Ctrl-A Ctrl-A = a literal Ctrl-A. Ctrl-C quits QEMU.

options:
  --console-socket PATH   put the UART on a UNIX socket server at PATH instead of the
                          terminal (QEMU waits until a client connects)
  --datactl-socket PATH   UNIX socket of the host-control port sis.datactl
                          (default /tmp/sis-datactl.sock); DATACTL_TCP=1 DATACTL_PORT=7777
                          use TCP 127.0.0.1:PORT instead
  --model PATH            model file placed in the LLM partition (default: SmolLM2-135M-
                          Instruct Q4_1, fetched by scripts/fetch-model.sh when missing)
  --tokenizer PATH        llama2.c tokenizer.bin placed after the model (for llama2.c
                          checkpoints; GGUF files carry their own tokenizer)
  --no-model              boot without a model
  --icount N              -icount shift=N: virtual time follows instructions (repeatable)
  --native                boot guest-llm alone, without the hypervisor (EL1, 3 cores as in
                          its partition, console straight on the UART, no Ctrl-A keys), the
                          model region at sis_platform::layout::native::MODEL_BASE: the
                          control run that measures what the hypervisor costs
  --no-build              do not run scripts/build.sh (use the last build)
  -h, --help              this text
USAGE
}

console_socket=""
datactl_socket=${DATACTL_SOCKET:-/tmp/sis-datactl.sock}
model=""
tokenizer=""
no_model=0
icount=""
native=0
build=1
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --console-socket) console_socket=${2:?--console-socket needs a path}; shift 2 ;;
        --datactl-socket) datactl_socket=${2:?--datactl-socket needs a path}; shift 2 ;;
        --model) model=${2:?--model needs a path}; shift 2 ;;
        --tokenizer) tokenizer=${2:?--tokenizer needs a path}; shift 2 ;;
        --no-model) no_model=1; shift ;;
        --icount) icount=${2:?--icount needs a number}; shift 2 ;;
        --native) native=1; shift ;;
        --no-build) build=0; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; extra=("$@"); break ;;
        *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done

target_dir=${SIS_IMAGE_TARGET_DIR:-$root/target/image}
if [ "$build" = 1 ]; then
    hv=$("$root/scripts/build.sh")
else
    hv="$target_dir/aarch64-unknown-none-softfloat/release/hypervisor"
fi
[ -f "$hv" ] || { echo "run.sh: no hypervisor image at $hv (run scripts/build.sh)" >&2; exit 1; }

# Where the partition table expects the model (sis_platform::layout::phys::MODEL_BASE/SIZE),
# as scripts/build.sh wrote it. The last page of the region holds a manifest
# (sis_platform::layout::model_region): the guest learns from it where the files are and how
# long they are.
layout_env="$target_dir/layout.env"
[ -f "$layout_env" ] || { echo "run.sh: no $layout_env (run scripts/build.sh)" >&2; exit 1; }
# shellcheck source=/dev/null
. "$layout_env"
model_addr=$SIS_MODEL_BASE
manifest_offset=$((SIS_MANIFEST_OFFSET))
# Without the hypervisor the guest finds the region at the top of the RAM it assumes
# (sis_platform::layout::native::MODEL_BASE).
[ "$native" = 0 ] || model_addr=$SIS_NATIVE_MODEL_BASE
manifest=""
# Eight little-endian u64 words on stdout.
le64() {
    local v
    for v in "$@"; do
        local i
        for i in 0 1 2 3 4 5 6 7; do
            printf "\\x$(printf %02x $(( (v >> (8 * i)) & 255 )))"
        done
    done
}
if [ "$no_model" = 0 ]; then
    if [ -z "$model" ]; then
        model="$root/models/cache/SmolLM2-135M-Instruct.Q4_1.gguf"
        [ -f "$model" ] || "$root/scripts/fetch-model.sh" >&2
    fi
    [ -f "$model" ] || { echo "run.sh: model file '$model' not found" >&2; exit 1; }
    size=$(stat -c %s "$model")
    tok_off=0
    tok_size=0
    end=$size
    if [ -n "$tokenizer" ]; then
        [ -f "$tokenizer" ] || { echo "run.sh: tokenizer file '$tokenizer' not found" >&2; exit 1; }
        tok_off=$(( (size + 4095) / 4096 * 4096 ))
        tok_size=$(stat -c %s "$tokenizer")
        end=$((tok_off + tok_size))
    fi
    if [ "$size" -eq 0 ] || [ "$end" -gt "$manifest_offset" ]; then
        echo "run.sh: model '$model' ($size bytes) and tokenizer ($tok_size bytes) do not fit the LLM partition's $manifest_offset bytes" >&2
        exit 1
    fi
    # The content depends only on the sizes, so runs sharing a file write identical bytes.
    manifest="${TMPDIR:-/tmp}/sis-model-manifest-$size-$tok_off-$tok_size.bin"
    if [ ! -f "$manifest" ]; then
        tmp=$(mktemp "${TMPDIR:-/tmp}/sis-model-manifest.XXXXXX")
        { printf 'SISMODL1'; le64 1 0 "$size" "$tok_off" "$tok_size" 0 0; } >"$tmp"
        mv -f "$tmp" "$manifest"
    fi
elif [ -n "$tokenizer" ]; then
    echo "run.sh: --tokenizer needs a model (drop --no-model)" >&2
    exit 1
fi

# highmem=off keeps the PCIe ECAM in the low window (0x3f00_0000); iommu=smmuv3 puts the SMMU
# (0x0905_0000) in front of the PCIe host bridge. The constants are in platform/src/layout.rs and
# the hypervisor checks them against the DTB.
machine=virt,virtualization=on,gic-version=3,highmem=off,iommu=smmuv3
kernel=$hv
smp=4
if [ "$native" = 1 ]; then
    machine=virt,gic-version=3
    # The LLM partition's three cores (sis_platform::partition): the same boot core and two
    # workers, so `llmctl workers N` means the same cores in both runs.
    smp=3
    kernel="$target_dir/aarch64-unknown-none/release/guest-llm"
    [ -f "$kernel" ] || { echo "run.sh: no guest-llm image at $kernel" >&2; exit 1; }
fi
args=(
    -machine "$machine"
    -cpu cortex-a72 -smp "$smp" -m 2G
    -display none -monitor none -nic none
    -kernel "$kernel"
)
if [ -n "$console_socket" ]; then
    rm -f "$console_socket"
    args+=(-chardev "socket,id=uart0,path=$console_socket,server=on,wait=on" -serial chardev:uart0)
else
    args+=(-chardev stdio,id=uart0,signal=on -serial chardev:uart0)
fi
if [ "${DATACTL_TCP:-0}" = 1 ]; then
    port=${DATACTL_PORT:-7777}
    args+=(-chardev "socket,id=datactl,host=127.0.0.1,port=$port,server=on,wait=off")
else
    rm -f "$datactl_socket"
    args+=(-chardev "socket,id=datactl,path=$datactl_socket,server=on,wait=off")
fi
# guest-ctl's devices, at the slots its partition table names (requester IDs 00:01.0, 00:02.0):
# modern-only (disable-legacy), DMA through the IOMMU (iommu_platform: without it QEMU's virtio
# DMA bypasses the SMMU), no MSI-X (vectors=0: INTx, routed by the hypervisor), queue
# notifications handled at once rather than through an event fd (ioeventfd=off: host-control
# ACK p50 46-65 us instead of 72-111 us, as with virtio-mmio; scripts/bench-datactl.sh).
pcie_dev="bus=pcie.0,disable-legacy=on,iommu_platform=on,vectors=0,ioeventfd=off"
args+=(-device "virtio-serial-pci,$pcie_dev,addr=0x1,id=vser0"
       -device "virtconsole,bus=vser0.0,chardev=datactl,name=sis.datactl")
args+=(-device "virtio-rng-pci,$pcie_dev,addr=0x2")
if [ "$no_model" = 0 ]; then
    args+=(-device "loader,file=$model,addr=$model_addr,force-raw=on")
    if [ -n "$tokenizer" ]; then
        args+=(-device "loader,file=$tokenizer,addr=$(printf '0x%x' $((model_addr + tok_off))),force-raw=on")
    fi
    args+=(-device "loader,file=$manifest,addr=$(printf '0x%x' $((model_addr + manifest_offset))),force-raw=on")
fi
if [ -n "$icount" ]; then
    args+=(-icount "shift=$icount")
fi
exec qemu-system-aarch64 "${args[@]}" "${extra[@]}"
