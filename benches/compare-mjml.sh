#!/usr/bin/env bash
# Whole-process render time: `bulletin render` on the sample (issue → Handlebars → MJML → HTML
# and text) next to the reference `mjml` CLI (npm) compiling the same MJML that bulletin
# generated, measured side by side in one run with hyperfine. Prints a table and the ratio.
#
#   bash benches/compare-mjml.sh            # installs hyperfine (apt) and mjml (npm) if missing
#
# mjml is installed under target/bench-tools/, never into the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-30}
tools=target/bench-tools
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! command -v hyperfine >/dev/null; then
  apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null
fi
if [ ! -x "$tools/node_modules/.bin/mjml" ]; then
  mkdir -p "$tools"
  npm install --silent --no-audit --no-fund --prefix "$tools" mjml@5 >/dev/null
fi
cargo build --release --quiet

bulletin=target/release/bulletin
mjml="$tools/node_modules/.bin/mjml"
"$bulletin" render issues/2020-06.json --out "$work/out" --mjml >/dev/null
# The MJML refers to images relative to the output folder; compiling does not load them.
cp "$work/out/2020-06.mjml" "$work/sample.mjml"

echo "bulletin $("$bulletin" --version | cut -d' ' -f2), mjml $("$mjml" --version | tr '\n' ' ')"
echo "machine: $(nproc) cores, $(uname -sm)"
hyperfine --warmup 3 --runs "$runs" --style basic --export-json "$work/times.json" \
  -n "bulletin render (issue → HTML + text)" "$bulletin render issues/2020-06.json --out $work/b" \
  -n "mjml CLI (same MJML → HTML)" "$mjml $work/sample.mjml -o $work/m.html"

python3 - "$work/times.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
b, m = r[0]["mean"], r[1]["mean"]
print(f"\nbulletin render: {b*1000:.1f} ms   mjml CLI: {m*1000:.1f} ms   bulletin is {m/b:.0f}x faster")
PY
