#!/usr/bin/env bash
# The key-format tests (tests/genomics/test_c4gh_key_formats.py) make researchers' SSH keys
# with OpenSSH's own ssh-keygen; install Debian's openssh-client when it is missing.
set -euo pipefail
if ! command -v ssh-keygen >/dev/null; then
  echo "installing Debian's openssh-client for the key-format tests…"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-client >/dev/null
fi
ssh -V
