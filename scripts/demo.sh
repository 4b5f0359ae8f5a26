#!/usr/bin/env bash
# The main job: installs what it needs, then runs the demo on the local engine (no cloud account).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ORT_DISABLE_TELEMETRY=1 HF_HUB_OFFLINE=1
exec .venv/bin/aoai-realtime demo "$@"
