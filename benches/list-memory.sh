#!/usr/bin/env bash
# Memory against list size: the peak RSS of `bulletin send` of the sample issue to a list of
# 1,000,000 readers (a few duplicates in other case, a few invalid rows) and to one of
# 100,000, both to Postfix's smtp-sink on this machine. The limit is 48 MB at any list size:
# what a send holds must not grow with the list.
#
#   bash benches/list-memory.sh                   # READERS=1000000 SMALL=100000 POOL=8
#   READERS=200000 SMALL=20000 bash benches/list-memory.sh
#
# It needs smtp-sink (Debian package postfix) and GNU time (package time), and installs
# nothing: it says what is missing. Everything it writes goes to a temporary folder.
#
# The 1,000,000-reader send takes about 10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

readers=${READERS:-1000000}
small=${SMALL:-100000}
pool=${POOL:-8}
limit_mb=48

# shellcheck source=benches/sink.sh
source benches/sink.sh
require_tools benches/list-memory.sh

cargo build --release --quiet
bulletin=$PWD/target/release/bulletin

work=$(mktemp -d)
trap 'stop_sink; rm -rf "$work"' EXIT
start_sink

# A workspace: the sample with its images published, and a profile for the sink.
ws=$work/ws
sample_workspace "$ws"
bench_settings "sink:$pool" >"$ws/bulletin.toml"

# list N FILE: N rows; every 1,000th repeats the address of 500 rows before in upper case (a
# duplicate), every 250,000th (from row 1,234) is not an address. The readers to send to are
# written to FILE.sent.
list() {
  awk -v n="$1" -v sent="$2.sent" 'BEGIN {
    print "email,first_name"
    for (i = 0; i < n; i++) {
      if (i % 1000 == 999) printf "R%d@EXAMPLE.ORG,Again\n", i - 500
      else if (i % 250000 == 1234) printf "not-an-address-%d,Nobody\n", i
      else { printf "r%d@example.org,R%d\n", i, i; unique++ }
    }
    print unique > sent
  }' >"$2"
}
measure() { # measure NAME LIST: the send, its wall seconds and peak RSS (KB) in $work/NAME.time
  local name=$1 list=$2
  rm -rf .bulletin
  if ! /usr/bin/time -f "%e %M" -o "$work/$name.time" \
    "$bulletin" send issues/2020-06.json --list "$list" --profile sink --yes >"$work/$name.out" 2>&1; then
    echo "$name failed:" >&2
    cat "$work/$name.out" >&2
    exit 1
  fi
  local expected
  expected=$(cat "$list.sent")
  grep -q "^Sent: $expected\$" "$work/$name.out" ||
    { echo "the send to $list did not send $expected messages:" >&2; cat "$work/$name.out" >&2; exit 1; }
}

cd "$ws"
list "$small" small.csv
list "$readers" big.csv
measure small small.csv
measure big big.csv
cd - >/dev/null
stop_sink

echo "bulletin $("$bulletin" --version | cut -d' ' -f2)"
echo "machine: $(nproc) cores, $(uname -sm); $(date -u +%Y-%m-%d)"
echo "the sample issue to smtp-sink on 127.0.0.1, $pool connections, from an empty ledger"
python3 - "$work" "$small" "$readers" "$limit_mb" <<'PY'
import sys
work, small, big, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
def read(name):
    wall, rss = open(f"{work}/{name}.time").read().split()
    skipped = [l.strip() for l in open(f"{work}/{name}.out") if l.startswith("Skipped (")]
    return float(wall), int(rss) / 1024, skipped
print(f"\n{'readers':>10}{'wall':>9}{'msg/s':>8}{'peak RSS':>11}   skipped")
rss = {}
for name, n in [("small", small), ("big", big)]:
    wall, rss[name], skipped = read(name)
    print(f"{n:>10}{wall:>8.0f}s{n / wall:>8.0f}{rss[name]:>8.1f} MB   {', '.join(skipped)}")
verdict = "within" if rss["big"] <= limit else "OVER"
print(f"\npeak RSS at {big} readers: {rss['big']:.1f} MB, {verdict} the limit of {limit:.0f} MB "
      f"({rss['big'] / limit:.2f} of it); {rss['big'] - rss['small']:+.1f} MB against {small} readers")
PY
