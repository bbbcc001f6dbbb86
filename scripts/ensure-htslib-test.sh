#!/usr/bin/env bash
# The htslib conformance test (tests/genomics/test_htslib_conformance.py) runs our format
# validation over every file of Debian's htslib-test package; install it when missing.
set -euo pipefail
if ! dpkg-query -W -f='${Status}' htslib-test 2>/dev/null | grep -q "install ok installed"; then
  echo "installing Debian's htslib-test for the format conformance test…"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq htslib-test >/dev/null
fi
dpkg-query -W -f='htslib-test ${Version}\n' htslib-test
# The htsget tests (tests/marketplace/test_htsget.py, tests/acceptance/test_htsget_flow.py)
# judge slices with the field's own tools: samtools, bcftools, bgzip/tabix.
if ! command -v samtools >/dev/null || ! command -v bcftools >/dev/null || ! command -v bgzip >/dev/null; then
  echo "installing samtools, bcftools and tabix for the htsget tests…"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq samtools bcftools tabix >/dev/null
fi
