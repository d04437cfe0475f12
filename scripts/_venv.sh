# Shared by scripts/quickstart.sh and scripts/test.sh (sourced, not run).
#
# ensure_venv EXTRAS PATH...   create .venv if missing, install torch==2.13.0 first, then
#                              `-e .[EXTRAS]` and `-e PATH` for each extra path. Skipped when
#                              nothing changed since the last install (a stamp in the venv
#                              remembers a hash of the pyproject files and of this script).
#
# torch is pinned on purpose: on a machine without CUDA, `pip install torch==2.13.0` finds the
# CPU wheel; an unpinned `pip install torch` could pull a multi-gigabyte CUDA build.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CLOUDBRIDGE_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
TORCH_VERSION="2.13.0"

log() { printf '\033[36m==> %s\033[0m\n' "$*" >&2; }

ensure_venv() {
    local extras="$1"
    shift
    if [ ! -x "$PY" ]; then
        local base="${PYTHON:-python3}"
        command -v "$base" >/dev/null || { echo "error: $base not found; install Python 3.11+" >&2; exit 2; }
        log "creating $VENV"
        "$base" -m venv "$VENV"
    fi
    "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
        || { echo "error: $VENV uses Python < 3.11" >&2; exit 2; }

    local stamp_input stamp_file stamp
    stamp_input="$extras $* $(cat "$ROOT/pyproject.toml" "${BASH_SOURCE[0]}" \
        $(for p in "$@"; do echo "$ROOT/$p/pyproject.toml"; done) 2>/dev/null | sha256sum)"
    stamp=$(printf '%s' "$stamp_input" | sha256sum | cut -c1-16)
    stamp_file="$VENV/.cloudbridge-install-$stamp"
    if [ -f "$stamp_file" ]; then
        log "environment up to date ($VENV)"
        return 0
    fi

    if ! "$PY" -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('torch').split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null; then
        log "installing torch==$TORCH_VERSION (CPU wheel where there is no CUDA)"
        "$PY" -m pip install --quiet "torch==$TORCH_VERSION"
    fi
    local args=(-e "$ROOT[$extras]")
    for path in "$@"; do
        if [ -f "$ROOT/$path/pyproject.toml" ]; then
            args+=(-e "$ROOT/$path")
        else
            echo "error: $path/pyproject.toml is missing" >&2
            exit 2
        fi
    done
    log "installing cloudbridge[$extras] $*"
    "$PY" -m pip install --quiet "${args[@]}" "torch==$TORCH_VERSION"
    rm -f "$VENV"/.cloudbridge-install-*
    touch "$stamp_file"
}
