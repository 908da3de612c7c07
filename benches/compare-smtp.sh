#!/usr/bin/env bash
# Sending speed and memory: `bulletin send` of the sample issue to a list of 100,000 readers,
# against Postfix's smtp-sink on this machine, next to Postfix's smtp-source sending as many
# messages of the same size over as many connections. Then the peak memory of a send to a list
# of 1,000,000 readers. Prints a table and the ratio bulletin / smtp-source.
#
#   bash benches/compare-smtp.sh                 # POOL=8 READERS=100000 RUNS=3 BIG=1000000
#   BIG=0 bash benches/compare-smtp.sh           # without the 1,000,000-reader send
#
# The sender and smtp-sink share the machine's cores, so one run says little: each of RUNS
# runs times both tools, in turn first, and the table gives every run and the medians.
#
# It needs smtp-sink and smtp-source (Debian package postfix) and GNU time (package time), and
# installs nothing: it says what is missing. Everything it writes goes to a temporary folder.
#
# The 1,000,000-reader send takes about 12 minutes, the whole script about 25.
set -euo pipefail
cd "$(dirname "$0")/.."

pool=${POOL:-8}
readers=${READERS:-100000}
runs=${RUNS:-3}
big=${BIG:-1000000}

missing=()
{ [ -x /usr/sbin/smtp-sink ] && [ -x /usr/sbin/smtp-source ]; } || missing+=(postfix)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
  echo "benches/compare-smtp.sh needs ${missing[*]}. On Debian or Ubuntu:" >&2
  echo "  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}" >&2
  echo "(only postfix's smtp-sink and smtp-source are used; its mail server need not run)" >&2
  exit 1
fi

cargo build --release --quiet
bulletin=$PWD/target/release/bulletin

work=$(mktemp -d)
sink=
stop_sink() {
  if [ -n "$sink" ]; then
    kill "$sink" 2>/dev/null || true
    wait "$sink" 2>/dev/null || true
    sink=
  fi
}
trap 'stop_sink; rm -rf "$work"' EXIT

# smtp-sink on a free loopback port; it refuses to keep running as root without -u.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_user=()
[ "$(id -u)" -ne 0 ] || as_user=(-u nobody)
/usr/sbin/smtp-sink "${as_user[@]}" "127.0.0.1:$port" 1024 &
sink=$!
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

# A workspace: the sample with its images published, and a profile for the sink.
ws=$work/ws
mkdir -p "$ws"
cp -r issues layouts "$ws/"
sed -i '0,/"language": "en",/s||"language": "en",\n  "images_url": "https://example.org/newsletter/2020-06/",|' \
  "$ws/issues/2020-06.json"
cat >"$ws/bulletin.toml" <<EOF
[sender]
from = "Bench <newsletter@example.org>"
list_id = "Bench newsletter <bench.example.org>"

[unsubscribe]
url = "https://example.org/unsubscribe?email={email}&token={token}"
mailto = "unsubscribe@example.org"
secret_env = "BULLETIN_UNSUBSCRIBE_SECRET"

[profiles.sink]
transport = "smtp"
host = "127.0.0.1"
port = $port
security = "none"
pool = $pool
EOF
export BULLETIN_UNSUBSCRIBE_SECRET=bench-secret-not-for-production

list() { # list N FILE: N readers
  awk -v n="$1" 'BEGIN { print "email,first_name"; for (i = 0; i < n; i++) printf "r%d@example.org,R%d\n", i, i }' >"$2"
}
measure() { # measure NAME COMMAND...: wall seconds, peak RSS (KB), CPU seconds in $work/NAME.time
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

send_list() { # the sample to every reader, from an empty ledger
  rm -rf .bulletin
  measure "bulletin$1" "$bulletin" send issues/2020-06.json --list list.csv --profile sink --yes
  sent "bulletin$1" "$readers"
}
source_list() { # as many messages of the same size, over as many connections
  measure "source$1" /usr/sbin/smtp-source -s "$pool" -m "$readers" -d -F "$work/message.txt" \
    -f newsletter@example.org -t reader@example.org "127.0.0.1:$port"
}
cd "$ws"
for run in $(seq "$runs"); do
  if [ $((run % 2)) -eq 1 ]; then
    send_list "$run" && source_list "$run"
  else
    source_list "$run" && send_list "$run"
  fi
done
if [ "$big" -gt 0 ]; then
  list "$big" "$ws/big.csv"
  rm -rf .bulletin
  measure big "$bulletin" send issues/2020-06.json --list big.csv --profile sink --yes
  sent big "$big"
fi
cd - >/dev/null
stop_sink

echo "bulletin $("$bulletin" --version | cut -d' ' -f2), $(dpkg-query -W -f='postfix ${Version}' postfix 2>/dev/null || echo postfix)"
echo "machine: $(nproc) cores, $(uname -sm); $(date -u +%Y-%m-%d)"
echo "messages of $size bytes, $pool connections, to smtp-sink on 127.0.0.1"
python3 - "$work" "$readers" "$runs" "$big" <<'PY'
import statistics, sys
work, readers, runs, big = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def read(name):
    wall, rss, user, system = open(f"{work}/{name}.time").read().split()
    return float(wall), int(rss) / 1024, float(user) + float(system)
print(f"\n{'':24}{'messages':>10}{'wall':>9}{'msg/s':>8}{'peak RSS':>11}{'CPU':>8}")
rates = {"bulletin": [], "source": []}
ratios = []
for run in range(1, runs + 1):
    for label, name in [("bulletin send", "bulletin"), ("smtp-source -d", "source")]:
        wall, rss, cpu = read(f"{name}{run}")
        rates[name].append(readers / wall)
        print(f"{label + ', run ' + str(run):24}{readers:>10}{wall:>8.1f}s{readers / wall:>8.0f}"
              f"{rss:>8.1f} MB{cpu:>7.1f}s")
    ratios.append(rates["bulletin"][-1] / rates["source"][-1])
print(f"\nmedian msg/s: bulletin {statistics.median(rates['bulletin']):.0f}, "
      f"smtp-source {statistics.median(rates['source']):.0f}")
print(f"bulletin / smtp-source: median {statistics.median(ratios):.2f} "
      f"(runs: {', '.join(f'{r:.2f}' for r in ratios)}; target 0.7 or more)")
if big:
    wall, rss, _ = read("big")
    print(f"bulletin send to {big} readers: {wall:.0f} s "
          f"({big / wall:.0f} msg/s), peak RSS {rss:.1f} MB (target under 100 MB)")
PY
