#!/usr/bin/env bash
# The browser the dashboard tests drive: Debian's chromium (no browser build can be downloaded here;
# Playwright itself comes from PyPI with the test extras). Installs it when missing; idempotent.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "warning: chromium is missing and apt-get is not available; the browser tests will be skipped" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
printf '\033[36m==> %s\033[0m\n' "installing chromium (Debian package) for the dashboard's browser tests" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null || true
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
