#!/usr/bin/env bash
# Whole-process render time: `bulletin render` on the sample (issue → Handlebars → MJML → HTML
# and text) next to two peers compiling the very MJML that bulletin generated, measured side by
# side in one hyperfine run:
#   - bare mrml (examples/bare_mrml.rs: read the .mjml, mrml parse + render with default
#     options, write the HTML; bulletin's own mrml crate and version), the floor for bulletin:
#     the goal is bulletin ≤ 2× bare mrml;
#   - the reference `mjml` CLI (npm).
# Prints hyperfine's table and the ratios bulletin / bare mrml and mjml / bulletin.
#
#   bash benches/compare-mjml.sh            # installs hyperfine (apt) and mjml (npm) if missing
#   RUNS=100 bash benches/compare-mjml.sh   # more runs (default 30)
#
# mjml is installed under target/bench-tools/, never into the repository; outputs go to a
# temporary folder.
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
cargo build --release --quiet --bin bulletin --example bare_mrml

bulletin=target/release/bulletin
bare=target/release/examples/bare_mrml
mjml="$tools/node_modules/.bin/mjml"
"$bulletin" render issues/2020-06.json --out "$work/out" --mjml >/dev/null
# The MJML refers to images relative to the output folder; compiling does not load them.
cp "$work/out/2020-06.mjml" "$work/sample.mjml"
# Once before timing, so that a document the peer cannot compile stops the script here.
"$bare" "$work/sample.mjml" "$work/bare.html"

echo "bulletin $("$bulletin" --version | cut -d' ' -f2), mrml $(grep -A1 '^name = "mrml"' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p'), mjml $("$mjml" --version | tr '\n' ' ')"
echo "machine: $(nproc) cores, $(uname -sm)"
hyperfine --warmup 3 --runs "$runs" --style basic --export-json "$work/times.json" \
  -n "bulletin render (issue → HTML + text)" "$bulletin render issues/2020-06.json --out $work/b" \
  -n "bare mrml (same MJML → HTML)" "$bare $work/sample.mjml $work/bare-run.html" \
  -n "mjml CLI (same MJML → HTML)" "$mjml $work/sample.mjml -o $work/m.html"

python3 - "$work/times.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
b, bare, m = (x["median"] for x in r)
print(f"\nmedians: bulletin render {b*1000:.1f} ms, bare mrml {bare*1000:.1f} ms, mjml CLI {m*1000:.1f} ms")
print(f"bulletin / bare mrml: {b/bare:.1f}x (goal: at most 2x)")
print(f"mjml CLI / bulletin: {m/b:.0f}x (bulletin is that much faster)")
PY
