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
  --no-model              boot without a model
  --icount N              -icount shift=N: virtual time follows instructions (repeatable)
  --no-build              do not run scripts/build.sh (use the last build)
  -h, --help              this text
USAGE
}

console_socket=""
datactl_socket=${DATACTL_SOCKET:-/tmp/sis-datactl.sock}
model=""
no_model=0
icount=""
build=1
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --console-socket) console_socket=${2:?--console-socket needs a path}; shift 2 ;;
        --datactl-socket) datactl_socket=${2:?--datactl-socket needs a path}; shift 2 ;;
        --model) model=${2:?--model needs a path}; shift 2 ;;
        --no-model) no_model=1; shift ;;
        --icount) icount=${2:?--icount needs a number}; shift 2 ;;
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

# Where the partition table expects the model (sis_platform::layout::phys::MODEL_BASE/SIZE).
model_addr=0x70000000
model_max=$((0x10000000))
if [ "$no_model" = 0 ]; then
    if [ -z "$model" ]; then
        model="$root/models/cache/SmolLM2-135M-Instruct.Q4_1.gguf"
        [ -f "$model" ] || "$root/scripts/fetch-model.sh" >&2
    fi
    [ -f "$model" ] || { echo "run.sh: model file '$model' not found" >&2; exit 1; }
    size=$(stat -c %s "$model")
    if [ "$size" -gt "$model_max" ]; then
        echo "run.sh: model '$model' is $size bytes; the LLM partition holds at most $model_max" >&2
        exit 1
    fi
fi

args=(
    -machine virt,virtualization=on,gic-version=3
    -cpu cortex-a72 -smp 4 -m 2G
    -display none -monitor none -nic none
    -kernel "$hv"
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
args+=(-device virtio-serial-device -device "virtconsole,chardev=datactl,name=sis.datactl")
args+=(-device virtio-rng-device)
if [ "$no_model" = 0 ]; then
    args+=(-device "loader,file=$model,addr=$model_addr,force-raw=on")
fi
if [ -n "$icount" ]; then
    args+=(-icount "shift=$icount")
fi
exec qemu-system-aarch64 "${args[@]}" "${extra[@]}"
