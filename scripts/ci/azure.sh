#!/usr/bin/env bash
# Install Azurite (the Azure Storage emulator) with npm into .cache/azurite, once; idempotent.
# The azure plugin's test session starts it (plugins/azure/tests/conftest.py) on 127.0.0.1.
#
#     bash scripts/ci/azure.sh          # prints the azurite-blob path
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="${CLOUDBRIDGE_AZURITE_DIR:-$ROOT/.cache/azurite}"
BIN="$DIR/node_modules/.bin/azurite-blob"
if [ ! -x "$BIN" ]; then
    command -v npm >/dev/null || { echo "warning: npm not found; Azure storage tests will be skipped" >&2; exit 0; }
    mkdir -p "$DIR"
    echo '{"name": "cloudbridge-azurite", "private": true}' > "$DIR/package.json"
    npm install --prefix "$DIR" --no-audit --no-fund --silent azurite@3 >&2
fi
echo "$BIN"
