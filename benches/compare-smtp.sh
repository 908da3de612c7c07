#!/usr/bin/env bash
# Sending speed: `bulletin send` of the sample issue to a list of READERS readers, against
# Postfix's smtp-sink on this machine, next to Postfix's smtp-source sending as many messages
# of the same bytes over as many connections: at 1 connection and at 8. For each pool size it
# prints every run, then the median of the paired ratios bulletin / smtp-source of messages a
# second (goal: 0.95 or more) and of CPU time per message (user + system; goal: 2 or less).
#
#   bash benches/compare-smtp.sh                    # READERS=20000 RUNS=3 POOLS="1 8"
#   READERS=5000 RUNS=5 bash benches/compare-smtp.sh
#
# The tools and smtp-sink share the machine's cores, so one run says little: each of RUNS
# runs times both tools, each in turn first, and the ratios pair the runs.
#
# It needs smtp-sink and smtp-source (Debian package postfix) and GNU time (package time), and
# installs nothing: it says what is missing. Everything it writes goes to a temporary folder.
# The peak memory of a 1,000,000-reader list is benches/list-memory.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."

readers=${READERS:-20000}
runs=${RUNS:-3}
pools=${POOLS:-1 8}

# shellcheck source=benches/sink.sh
source benches/sink.sh
require_tools benches/compare-smtp.sh smtp-source

cargo build --release --quiet
bulletin=$PWD/target/release/bulletin

work=$(mktemp -d)
trap 'stop_sink; rm -rf "$work"' EXIT
start_sink

# A workspace: the sample with its images published, and a profile for the sink per pool size.
ws=$work/ws
sample_workspace "$ws"
profiles=()
for pool in $pools; do profiles+=("sink$pool:$pool"); done
bench_settings "${profiles[@]}" >"$ws/bulletin.toml"

list() { # list N FILE: N readers
  awk -v n="$1" 'BEGIN { print "email,first_name"; for (i = 0; i < n; i++) printf "r%d@example.org,R%d\n", i, i }' >"$2"
}
measure() { # measure NAME COMMAND...: wall seconds, peak RSS (KB), user and system seconds in $work/NAME.time
  local name=$1
  shift
  if ! /usr/bin/time -f "%e %M %U %S" -o "$work/$name.time" "$@" >"$work/$name.out" 2>&1; then
    echo "$name failed:" >&2
    cat "$work/$name.out" >&2
    exit 1
  fi
}
sent() { # sent NAME N: the send reported N sent, or the run stops here
  grep -q "^Sent: $2\$" "$work/$1.out" || { echo "$1 did not send $2 messages:" >&2; cat "$work/$1.out" >&2; exit 1; }
}

list "$readers" "$ws/list.csv"
list 1 "$ws/one.csv"

# smtp-source sends the message bulletin writes for one reader, with LF line ends (it adds CR).
(cd "$ws" && "$bulletin" send issues/2020-06.json --list one.csv --dry-run "$work/eml" >/dev/null)
tr -d '\r' <"$work"/eml/*.eml >"$work/message.txt"
size=$(wc -c <"$work"/eml/*.eml)

send_list() { # send_list POOL RUN: the sample to every reader, from an empty ledger
  rm -rf .bulletin
  measure "bulletin-$1-$2" "$bulletin" send issues/2020-06.json --list list.csv --profile "sink$1" --yes
  sent "bulletin-$1-$2" "$readers"
}
source_list() { # source_list POOL RUN: as many messages of the same bytes, over as many connections
  measure "source-$1-$2" /usr/sbin/smtp-source -s "$1" -m "$readers" -d -F "$work/message.txt" \
    -f newsletter@example.org -t reader@example.org "127.0.0.1:$port"
}
cd "$ws"
for pool in $pools; do
  for run in $(seq "$runs"); do
    if [ $((run % 2)) -eq 1 ]; then
      send_list "$pool" "$run" && source_list "$pool" "$run"
    else
      source_list "$pool" "$run" && send_list "$pool" "$run"
    fi
  done
done
cd - >/dev/null
stop_sink

echo "bulletin $("$bulletin" --version | cut -d' ' -f2), $(dpkg-query -W -f='postfix ${Version}' postfix 2>/dev/null || echo postfix)"
echo "machine: $(nproc) cores, $(uname -sm), load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%d)"
echo "$readers messages of $size bytes to smtp-sink on 127.0.0.1; CPU is user + system time"
python3 - "$work" "$readers" "$runs" "$pools" <<'PY'
import statistics, sys
work, readers, runs, pools = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split()
def read(name):
    wall, rss, user, system = open(f"{work}/{name}.time").read().split()
    return float(wall), int(rss) / 1024, float(user) + float(system)
median = statistics.median
for pool in pools:
    print(f"\n{pool} connection{'s' if pool != '1' else ''}")
    print(f"{'':24}{'wall':>8}{'msg/s':>8}{'peak RSS':>11}{'CPU':>8}{'CPU/msg':>10}")
    rates, cpus, rate_ratios, cpu_ratios = {"bulletin": [], "source": []}, {"bulletin": [], "source": []}, [], []
    for run in range(1, runs + 1):
        for label, name in [("bulletin send", "bulletin"), ("smtp-source -d", "source")]:
            wall, rss, cpu = read(f"{name}-{pool}-{run}")
            rates[name].append(readers / wall)
            cpus[name].append(cpu / readers)
            print(f"{label + ', run ' + str(run):24}{wall:>7.1f}s{readers / wall:>8.0f}"
                  f"{rss:>8.1f} MB{cpu:>7.2f}s{cpu / readers * 1e6:>7.0f} µs")
        rate_ratios.append(rates["bulletin"][-1] / rates["source"][-1])
        cpu_ratios.append(cpus["bulletin"][-1] / max(cpus["source"][-1], 1e-9))
    print(f"median msg/s: bulletin {median(rates['bulletin']):.0f}, smtp-source {median(rates['source']):.0f}")
    print(f"msg/s bulletin / smtp-source: median {median(rate_ratios):.2f} "
          f"(runs: {', '.join(f'{r:.2f}' for r in rate_ratios)}; goal 0.95 or more)")
    print(f"CPU per message bulletin / smtp-source: median {median(cpu_ratios):.2f} "
          f"(runs: {', '.join(f'{r:.2f}' for r in cpu_ratios)}; goal 2 or less)")
PY
