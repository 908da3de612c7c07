#!/usr/bin/env bash
# Installs what the tests need besides cargo: Debian's chromium and chromium-driver, which
# the preview test drives headless, spamassassin, which scores the sample message, openssl,
# which makes the DKIM keys the send tests sign with, and poppler-utils, whose pdftotext
# reads the print version's PDF page by page, and dovecot-imapd, the IMAP server the bounce
# tests start (unprivileged, on a loopback port) and read bounce reports from;
# Python's aiosmtpd, the SMTP server the send tests deliver to, dkimpy, which verifies their
# DKIM signatures, PyNaCl, which dkimpy needs for Ed25519 ones, icalendar, the independent
# parser the calendar tests read the .ics files with, and feedparser, which reads the Atom
# feed the publish tests write. Safe to run again: it installs only what is missing.
set -euo pipefail

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v spamassassin >/dev/null || missing+=(spamassassin)
command -v openssl >/dev/null || missing+=(openssl)
command -v pdftotext >/dev/null || missing+=(poppler-utils)
command -v npm >/dev/null || missing+=(npm)
{ [ -x /usr/sbin/dovecot ] || command -v dovecot >/dev/null; } || missing+=(dovecot-imapd)

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

if ! python3 -c "import aiosmtpd, dkim, nacl, icalendar, feedparser" 2>/dev/null; then
  echo "tests/setup.sh: installing aiosmtpd, dkimpy, pynacl, icalendar and feedparser (pip)"
  python3 -m pip install --quiet --disable-pip-version-check aiosmtpd dkimpy pynacl icalendar feedparser
fi

# axe-core, the accessibility engine the web edition's pages are checked with in Chromium;
# kept in target/ (never committed), pinned to a minor version so results do not move.
axe_dir="$(cd "$(dirname "$0")/.." && pwd)/target/test-tools"
if [ ! -f "$axe_dir/node_modules/axe-core/axe.min.js" ]; then
  echo "tests/setup.sh: installing axe-core (npm)"
  mkdir -p "$axe_dir"
  npm install --silent --no-audit --no-fund --prefix "$axe_dir" axe-core@~4.14 >/dev/null
fi
