#!/usr/bin/env bash
# Whole-process render time: `bulletin render` on the sample (issue → Handlebars → MJML → HTML
# and text) next to two peers compiling the very MJML that bulletin generated, measured side by
# side in one hyperfine run:
#   - bare mrml (examples/bare_mrml.rs: read the .mjml, mrml parse + render with default
#     options, write the HTML; bulletin's own mrml crate and version), the floor for bulletin:
#     the goal is bulletin ≤ 2× bare mrml;
#   - the reference `mjml` CLI (npm).
# Prints hyperfine's table for each round and the ratios bulletin / bare mrml and
# mjml / bulletin. The runs are split into rounds (ROUNDS, default 5), each timing the three
# in turn, the first to go taking turns: the speed of a shared machine drifts over a minute,
# and a ratio is taken within a round, then the median of the rounds' ratios is reported,
# with their range. Without a shell (hyperfine -N): at a few milliseconds a run, the shell's
# start would be most of what is measured.
# Then bulletin and bare mrml alone, in turn (PAIRS times each, default 300), each run timed
# from its start to its exit: the ratio of each pair, then their median and quartiles. Runs a
# few milliseconds apart see the same machine, where a round of hyperfine sees it drift; on
# this machine that is what told a 9% change from noise.
#
#   bash benches/compare-mjml.sh            # installs hyperfine (apt) and mjml (npm) if missing
#   RUNS=100 bash benches/compare-mjml.sh   # more runs in all (default 30)
#   ROUNDS=10 RUNS=100 bash benches/compare-mjml.sh
#   PAIRS=1000 bash benches/compare-mjml.sh
#
# mjml is installed under target/bench-tools/, never into the repository; outputs go to a
# temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-30}
rounds=${ROUNDS:-5}
pairs=${PAIRS:-300}
per_round=$(( (runs + rounds - 1) / rounds ))
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
# bulletin built alone, as `cargo build --release` and `cargo install` build it, and copied
# aside: built together with the example, it would get the features its dev-dependencies turn
# on in the crates they share, and be another program (0.6 MB larger, its code no longer laid
# out as build.rs orders it: about 50 more page faults a render, measured in the eleventh
# round; the rounds before measured that program).
cargo build --release --quiet --bin bulletin
cp target/release/bulletin "$work/bulletin"
bulletin=$work/bulletin
cargo build --release --quiet --example bare_mrml
bare=target/release/examples/bare_mrml
mjml="$tools/node_modules/.bin/mjml"
"$bulletin" render issues/2020-06.json --out "$work/out" --mjml >/dev/null
# The MJML refers to images relative to the output folder; compiling does not load them.
cp "$work/out/2020-06.mjml" "$work/sample.mjml"
# Once before timing, so that a document the peer cannot compile stops the script here.
"$bare" "$work/sample.mjml" "$work/bare.html"

echo "bulletin $("$bulletin" --version | cut -d' ' -f2), mrml $(grep -A1 '^name = "mrml"' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p'), mjml $("$mjml" --version | tr '\n' ' ')"
echo "machine: $(nproc) cores, $(uname -sm)"
names=("bulletin render (issue → HTML + text)" "bare mrml (same MJML → HTML)" "mjml CLI (same MJML → HTML)")
commands=("$bulletin render issues/2020-06.json --out $work/b" "$bare $work/sample.mjml $work/bare-run.html" "$mjml $work/sample.mjml -o $work/m.html")
for round in $(seq 0 $((rounds - 1))); do
  echo
  echo "round $((round + 1)) of $rounds, $per_round runs each:"
  args=()
  for k in 0 1 2; do
    i=$(( (k + round) % 3 ))
    args+=(-n "${names[$i]}" "${commands[$i]}")
  done
  hyperfine -N --warmup 3 --runs "$per_round" --style basic --export-json "$work/times-$round.json" "${args[@]}"
done

python3 - "$work" "$rounds" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
b_bare, m_b, medians = [], [], {"bulletin": [], "bare": [], "mjml": []}
for r in range(rounds):
    by = {}
    for x in json.load(open(f"{work}/times-{r}.json"))["results"]:
        key = "bulletin" if x["command"].startswith("bulletin") else "bare" if x["command"].startswith("bare") else "mjml"
        by[key] = x["median"]
        medians[key].append(x["median"])
    b_bare.append(by["bulletin"] / by["bare"])
    m_b.append(by["mjml"] / by["bulletin"])
ms = {k: statistics.median(v) * 1000 for k, v in medians.items()}
print(f"\nmedians of the rounds: bulletin render {ms['bulletin']:.1f} ms, bare mrml {ms['bare']:.1f} ms, mjml CLI {ms['mjml']:.1f} ms")
print(f"bulletin / bare mrml: {statistics.median(b_bare):.2f}x (rounds {min(b_bare):.2f} to {max(b_bare):.2f}; goal: at most 2x)")
print(f"mjml CLI / bulletin: {statistics.median(m_b):.0f}x (rounds {min(m_b):.0f} to {max(m_b):.0f}; bulletin is that much faster)")
PY

echo
echo "in turn, $pairs pairs:"
python3 - "$pairs" "$bulletin" "$bare" "$work" <<'PY'
import os, statistics, sys, time
pairs, bulletin, bare, work = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
quiet = os.open(os.devnull, os.O_WRONLY)
commands = {
    "bulletin": [bulletin, "render", "issues/2020-06.json", "--out", f"{work}/b"],
    "bare": [bare, f"{work}/sample.mjml", f"{work}/bare-run.html"],
}
def run(argv):
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, quiet, 1)])
    _, status = os.waitpid(pid, 0)
    if status != 0:
        sys.exit(f"{argv[0]} failed")
    return time.perf_counter() - start
for argv in commands.values():
    for _ in range(5):
        run(argv)
times = {name: [] for name in commands}
for i in range(pairs):
    # Each goes first in every other pair.
    for name in (["bulletin", "bare"] if i % 2 == 0 else ["bare", "bulletin"]):
        times[name].append(run(commands[name]))
ratios = sorted(b / m for b, m in zip(times["bulletin"], times["bare"]))
q = lambda f: ratios[int(f * (len(ratios) - 1))]
ms = {name: statistics.median(t) * 1000 for name, t in times.items()}
print(f"medians: bulletin render {ms['bulletin']:.1f} ms, bare mrml {ms['bare']:.1f} ms")
print(f"bulletin / bare mrml, pair by pair: {statistics.median(ratios):.2f}x (quartiles {q(0.25):.2f} to {q(0.75):.2f}; goal: at most 2x)")
PY
