#!/usr/bin/env bash
# Install the real browser the shop-terminal UI tests drive: Debian's chromium and
# chromium-driver (WebDriver). Idempotent; needs root (CI runs as root) or sudo.
# Prints nothing on stdout; tests find the binaries on PATH (or via OUTPOST_CHROMEDRIVER /
# OUTPOST_CHROMIUM).
set -euo pipefail
if command -v chromedriver >/dev/null 2>&1 && { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }; then
  exit 0
fi
SUDO=""
if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi
echo "browser: installing chromium and chromium-driver (apt)" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq chromium chromium-driver >&2
