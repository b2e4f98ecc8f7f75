#!/usr/bin/env bash
# Debian packages the test suite needs besides the services: Chromium for the dashboard test
# (driven by playwright-core) and kcat for the journal interoperability test. Idempotent:
# installs only what is missing (needs root for that).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v kcat >/dev/null 2>&1 || need+=(kcat)
if ((${#need[@]} == 0)); then
  echo "[tools] chromium and kcat are installed"
  exit 0
fi
echo "[tools] installing ${need[*]}"
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
echo "[tools] installed ${need[*]}"
