#!/usr/bin/env bash
# Install everything into .venv and run the whole test suite: ruff, the docs build, pytest.
# Exits with pytest's status ("no tests collected" counts as a failure). Idempotent.
#
#     bash scripts/test.sh [extra pytest arguments]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"

ensure_venv "train,minilm,test,gpu,dashboard" plugins/aws plugins/slurm plugins/azure plugins/gcp examples/custom-provider examples/notify-plugin
cd "$ROOT"
bash scripts/ci/slurm.sh
bash scripts/ci/azure.sh >/dev/null  # Azurite (npm) for the azure plugin tests
bash scripts/ci/browser.sh  # Debian chromium for the dashboard browser tests
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 NO_MKDOCS_2_WARNING=1

log "ruff check"
"$VENV/bin/ruff" check .

log "mkdocs build --strict"
site="$(mktemp -d)"
trap 'rm -rf "$site"' EXIT
"$PY" -m mkdocs build --strict --quiet --site-dir "$site"

workers="${CLOUDBRIDGE_TEST_WORKERS:-2}"
log "pytest (-n $workers)"
status=0
"$PY" -m pytest -n "$workers" "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "error: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
