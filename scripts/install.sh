#!/usr/bin/env bash
# Installs everything the service and its tests need on a fresh Linux machine with
# Python 3.11+: the Debian tools the tests use to make speech (when run as root), then a
# virtual environment in .venv with the project. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${1:-}"  # "test" also installs the test dependencies

# The tests speak with espeak-ng, cut audio with sox, check the compose file with
# docker-compose and drive the web page in Debian's chromium (Playwright downloads no
# browser here).
debian_tools="espeak-ng sox docker-compose chromium"
if [ "$extras" = "test" ] && ! { command -v espeak-ng && command -v sox && command -v docker-compose && command -v chromium; } >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $debian_tools >/dev/null
  else
    echo "note: install $debian_tools for the full test suite (apt-get install $debian_tools)" >&2
  fi
fi

python=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    python="$candidate"; break
  fi
done
[ -n "$python" ] || { echo "Python 3.11 or newer is required" >&2; exit 1; }

[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
