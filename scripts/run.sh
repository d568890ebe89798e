#!/usr/bin/env bash
# Set up and start the whole service on this machine: embedded Valkey (unless REDIS_URL is
# set), the gateway on http://127.0.0.1:8000 and one worker per stage. Ctrl-C stops it;
# running jobs finish first. Extra arguments go to `stt up`, e.g. --workers transcribe=2.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/stt up "$@"
