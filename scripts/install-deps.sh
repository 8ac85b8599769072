#!/usr/bin/env bash
# Installs everything beyond the Rust toolchain that the tests and tools need.
# Idempotent; run as root (CI does) or with sudo. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# `systemd-analyze verify` checks the unit files (engine/tests/systemd.rs).
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
# A real headless browser renders /dashboard (engine/tests/dashboard.rs).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v rustfmt >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi
echo "install-deps: ok"
