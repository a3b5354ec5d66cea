#!/usr/bin/env bash
# Boots the Linux reference VM built by scripts/linux-vm/build.sh on the same QEMU machine
# model the LLM partition runs on (virt, cortex-a72, GICv3), with the model file on a
# read-only virtio disk. /init copies it into a tmpfs and opens a shell (`linux# `) on the
# console. A measurement tool, not part of SIS. See --help.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

usage() {
    cat <<'USAGE'
usage: scripts/linux-vm/run.sh [options] [-- extra qemu arguments]
  --model PATH            model file on the virtio disk (default: SmolLM2-135M-Instruct Q4_1)
  --smp N                 vCPUs (default 3: the LLM partition's cores)
  --mem SIZE              RAM (default 640M: the LLM partition's 384 MiB of RAM plus its
                          256 MiB model region, since Linux keeps the model in its RAM)
  --console-socket PATH   console on a UNIX socket server at PATH (QEMU waits for a client)
  --icount N              -icount shift=N
  --dir DIR               build output (default: $SIS_LINUX_VM_DIR or models/cache/linux-vm)
  Ctrl-A x quits QEMU when the console is on this terminal.
USAGE
}

model=$root/models/cache/SmolLM2-135M-Instruct.Q4_1.gguf
smp=3
mem=640M
console_socket=""
icount=""
dir=${SIS_LINUX_VM_DIR:-$root/models/cache/linux-vm}
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --model) model=${2:?--model needs a path}; shift 2 ;;
        --smp) smp=${2:?--smp needs a number}; shift 2 ;;
        --mem) mem=${2:?--mem needs a size}; shift 2 ;;
        --console-socket) console_socket=${2:?--console-socket needs a path}; shift 2 ;;
        --icount) icount=${2:?--icount needs a number}; shift 2 ;;
        --dir) dir=${2:?--dir needs a directory}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        --) shift; extra=("$@"); break ;;
        *) echo "linux-vm/run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
for f in "$dir/Image" "$dir/initramfs.cpio.gz"; do
    [ -f "$f" ] || { echo "linux-vm/run.sh: $f missing (run scripts/linux-vm/build.sh)" >&2; exit 1; }
done
[ -f "$model" ] || { echo "linux-vm/run.sh: model '$model' not found" >&2; exit 1; }
size=$(stat -c %s "$model")

args=(
    -machine virt,gic-version=3 -cpu cortex-a72 -smp "$smp" -m "$mem"
    -display none -monitor none -nic none
    -kernel "$dir/Image" -initrd "$dir/initramfs.cpio.gz"
    -append "console=ttyAMA0 quiet sis.model_size=$size"
    -drive "if=none,id=model,file=$model,format=raw,readonly=on"
    -device virtio-blk-device,drive=model
)
if [ -n "$console_socket" ]; then
    rm -f "$console_socket"
    args+=(-chardev "socket,id=con,path=$console_socket,server=on,wait=on" -serial chardev:con)
else
    args+=(-serial mon:stdio)
fi
if [ -n "$icount" ]; then
    args+=(-icount "shift=$icount")
fi
exec qemu-system-aarch64 "${args[@]}" "${extra[@]}"
