#!/usr/bin/env bash
# The README's screenshots (docs/screenshots/) are the browser journeys' own: run them
# (tests/e2e/test_journeys.py saves its shots in tests/e2e/artifacts/), then copy the ones
# the README shows. Needs what `make test` needs (PostgreSQL, Redis, Debian's chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
SHOTS=(catalogue dataset upload-progress review-queue payment granted delisted files-phone)
for shot in "${SHOTS[@]}"; do rm -f "tests/e2e/artifacts/$shot.png"; done
make pytest PYTEST_ARGS="tests/e2e/test_journeys.py -p no:cacheprovider --no-cov"
for shot in "${SHOTS[@]}"; do
  cp "tests/e2e/artifacts/$shot.png" "docs/screenshots/$shot.png"
done
echo "refreshed: ${SHOTS[*]}"
