#!/usr/bin/env bash
# Installs what the tests need besides cargo: Debian's chromium and chromium-driver, which
# the preview test drives headless, spamassassin, which scores the sample message, and
# openssl, which makes the DKIM keys the send tests sign with;
# Python's aiosmtpd, the SMTP server the send tests deliver to, dkimpy, which verifies their
# DKIM signatures, PyNaCl, which dkimpy needs for Ed25519 ones, and feedparser, which reads
# the Atom feed the publish tests write. Safe to run again: it installs only what is missing.
set -euo pipefail

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v spamassassin >/dev/null || missing+=(spamassassin)
command -v openssl >/dev/null || missing+=(openssl)

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

if ! python3 -c "import aiosmtpd, dkim, nacl, feedparser" 2>/dev/null; then
  echo "tests/setup.sh: installing aiosmtpd, dkimpy, pynacl and feedparser (pip)"
  python3 -m pip install --quiet --disable-pip-version-check aiosmtpd dkimpy pynacl feedparser
fi
