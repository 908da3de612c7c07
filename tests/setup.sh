#!/usr/bin/env bash
# Installs what the tests need besides cargo: Debian's chromium and chromium-driver, which
# the preview test drives headless, Python's aiosmtpd, the SMTP server the send tests
# deliver to, and dkimpy, which verifies their DKIM signatures. Safe to run again: it installs only what is missing.
set -euo pipefail

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "tests/setup.sh: install ${missing[*]} (Debian packages) as root" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "tests/setup.sh: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" fonts-dejavu-core >/dev/null
fi

if ! python3 -c "import aiosmtpd, dkim" 2>/dev/null; then
  echo "tests/setup.sh: installing aiosmtpd and dkimpy (pip)"
  python3 -m pip install --quiet --disable-pip-version-check aiosmtpd dkimpy
fi
