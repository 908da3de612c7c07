#!/usr/bin/env bash
# A provider send at scale: 100,000 personalised messages through a local fake of Postmark's
# batch endpoint (examples/fake_provider.rs, on 127.0.0.1), with the sample issue. Reports the
# requests made next to the fewest the batch limit allows (ceil(N / 500)), messages per second
# (wall time of the whole `bulletin send`, list pass and ledger included) and peak memory
# (maximum resident set size, from GNU time).
#
#   bash benches/compare-providers.sh            # N=100000 by default; N=… to change
#
# Needs GNU time (Debian package `time`) and python3; everything runs on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."

n=${N:-100000}
limit=500
work=$(mktemp -d)
fake_pid=
cleanup() {
  if [ -n "$fake_pid" ]; then kill "$fake_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ ! -x /usr/bin/time ]; then
  echo "GNU time is missing: apt-get install -y time" >&2
  exit 1
fi
cargo build --release --quiet --bin bulletin --example fake_provider
bulletin=$PWD/target/release/bulletin

target/release/examples/fake_provider 127.0.0.1:0 >"$work/fake.out" &
fake_pid=$!
for _ in $(seq 100); do
  grep -q READY "$work/fake.out" 2>/dev/null && break
  sleep 0.05
done
url=$(sed -n 's/^READY //p' "$work/fake.out")

mkdir -p "$work/ws"
cp -r issues layouts "$work/ws/"
# Images must be published for a real send; the benchmark says where.
sed -i 's|"language": "en",|"language": "en",\n  "images_url": "https://example.org/newsletter/2020-06/",|' "$work/ws/issues/2020-06.json"
cat bulletin.toml - >"$work/ws/bulletin.toml" <<TOML

[profiles.bench]
transport = "postmark"
endpoint = "$url"
api_key_env = "BENCH_POSTMARK_TOKEN"
concurrency = 4
TOML
python3 - "$n" "$work/ws/subscribers.csv" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("email,first_name,name\n")
    for i in range(n):
        f.write(f"reader{i}@example.org,Reader{i},Reader {i}\n")
PY

echo "bulletin $("$bulletin" --version | cut -d' ' -f2); machine: $(nproc) cores, $(uname -sm); $n recipients"
(
  cd "$work/ws"
  BULLETIN_UNSUBSCRIBE_SECRET=bench BENCH_POSTMARK_TOKEN=bench \
    /usr/bin/time -v -o "$work/time.txt" \
    "$bulletin" send issues/2020-06.json --profile bench --list subscribers.csv --yes >"$work/send.out"
)
stats=$(python3 -c "import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1] + '/stats').read().decode())" "$url")

python3 - "$work/time.txt" "$stats" "$n" "$limit" "$work/send.out" <<'PY'
import json, math, re, sys
time_txt, stats, n, limit, out = open(sys.argv[1]).read(), json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), open(sys.argv[5]).read()
def field(name):
    return re.search(re.escape(name) + r": (.+)", time_txt).group(1).strip()
wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss)")
parts = [float(p) for p in wall.split(":")]
seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
rss_mb = int(field("Maximum resident set size (kbytes)")) / 1024
sent = int(re.search(r"Sent: (\d+)", out).group(1))
fewest = math.ceil(n / limit)
print(f"\n{'':28}{'bulletin → fake Postmark':>26}")
print(f"{'messages sent':28}{sent:>26}")
print(f"{'requests made':28}{stats['requests']:>26}")
print(f"{'fewest the limit allows':28}{fewest:>26}   ({limit} per request)")
print(f"{'request bodies':28}{stats['bytes'] / 1e9:>23.2f} GB")
print(f"{'wall time':28}{seconds:>24.1f} s")
print(f"{'messages per second':28}{sent / seconds:>26.0f}")
print(f"{'peak memory (max RSS)':28}{rss_mb:>23.0f} MB")
ok = stats["requests"] == fewest and stats["messages"] == n == sent
print("\nrequests = the minimum, every message once" if ok else "\nMISMATCH: see the figures above")
sys.exit(0 if ok else 1)
PY
