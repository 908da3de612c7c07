#!/usr/bin/env bash
# Preview latency, save → visible: `bulletin preview` (release build) of a copy of the sample,
# in a real headless Chromium through chromedriver; each save's change is timed by the browser
# from just before the write to the first animation frame that shows it. Prints the median,
# p90 and maximum against the goals (≤ 80 ms median, ≤ 150 ms max), with the machine.
#
#   bash benches/preview-latency.sh            # RUNS=30 saves of each style (rename, in place)
#   RUNS=10 POLL=1 bash benches/preview-latency.sh   # the preview with --poll
#
# It needs chromium and chromedriver (Debian packages chromium, chromium-driver; see
# tests/setup.sh) and python3, and installs nothing. Everything it writes goes to a temporary
# folder; the preview and chromedriver it starts are stopped by their PIDs. The machine's other
# work shows in the figures: run it a few times.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  echo "benches/preview-latency.sh needs ${missing[*]}. On Debian or Ubuntu:" >&2
  echo "  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}" >&2
  exit 1
fi

cargo build --release --quiet
BULLETIN=$PWD/target/release/bulletin exec python3 benches/preview-latency.py
