#!/usr/bin/env bash
# The whole test suite: installs what it needs, then lint, type check, tests with coverage.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test || { echo "test: setup failed"; exit 1; }
# shellcheck disable=SC1091
. .venv/bin/activate
export ORT_DISABLE_TELEMETRY=1 HF_HUB_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1

status=0
echo "== ruff"; ruff check src tests bench || status=1
echo "== mypy --strict src"; mypy src || status=1
# Hypothesis runs with one seed per run, printed, so any failure reproduces with HYPOTHESIS_SEED=<seed>.
seed="${HYPOTHESIS_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
echo "== pytest (hypothesis seed $seed: rerun with HYPOTHESIS_SEED=$seed bash scripts/test.sh)"
rm -f .coverage .coverage.*
coverage run -m pytest -q -p no:cacheprovider --hypothesis-seed="$seed" "$@"
rc=$?
if [ "$rc" -ne 0 ]; then status=1; fi
coverage combine -q >/dev/null 2>&1 || true
echo "== coverage (floor: fail_under in pyproject.toml)"; coverage report || status=1
exit "$status"
