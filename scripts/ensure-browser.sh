#!/usr/bin/env bash
# The browser journeys (tests/e2e) drive Debian's chromium; install it when missing.
# Playwright's own browser download is never used (there is no internet here).
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium for the browser tests…"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
dpkg-query -W -f='chromium ${Version}\n' chromium
