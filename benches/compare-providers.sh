#!/usr/bin/env bash
# Provider sends at scale: N personalised messages (100,000 by default) through a local fake
# of Postmark's batch endpoint and of Brevo's transactional endpoint
# (examples/fake_provider.rs, on 127.0.0.1), with the sample issue and default settings. For
# each provider: the requests made next to the fewest the batch limit allows (ceil(N / 500)
# for Postmark, ceil(N / 1000) for Brevo), the request bodies' bytes, messages per second
# (wall time of the whole `bulletin send`, list pass and ledger included) and peak memory
# (maximum resident set size, from GNU time) against the 192 MB limit of issue 17.
#
#   bash benches/compare-providers.sh              # N=100000; N=… to change
#   SMALL_N=5000 bash benches/compare-providers.sh # also at 5,000: memory must not grow
#   BULLETIN=path/to/bulletin bash benches/…       # another build (e.g. main's), not rebuilt
#
# Needs GNU time (Debian package `time`) and python3; everything runs on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."

n=${N:-100000}
small=${SMALL_N:-}
limit_mb=192
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
if [ -n "${BULLETIN:-}" ]; then
  cargo build --release --quiet --example fake_provider
  bulletin=$(realpath "$BULLETIN")
else
  # Built alone, as `cargo build --release` and `cargo install` build it: built together with
  # an example, bulletin would get the features its dev-dependencies turn on in the crates
  # they share, and be another program (0.6 MB larger).
  cargo build --release --quiet --bin bulletin
  cp target/release/bulletin "$work/bulletin"
  bulletin=$work/bulletin
  cargo build --release --quiet --example fake_provider
fi

target/release/examples/fake_provider 127.0.0.1:0 >"$work/fake.out" &
fake_pid=$!
for _ in $(seq 100); do
  grep -q READY "$work/fake.out" 2>/dev/null && break
  sleep 0.05
done
url=$(sed -n 's/^READY //p' "$work/fake.out")
stats() {
  python3 -c "import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1] + '/stats').read().decode())" "$url"
}

mkdir -p "$work/ws"
cp -r issues layouts "$work/ws/"
# Images must be published for a real send; the benchmark says where.
sed -i 's|"language": "en",|"language": "en",\n  "images_url": "https://example.org/newsletter/2020-06/",|' "$work/ws/issues/2020-06.json"
cat bulletin.toml - >"$work/ws/bulletin.toml" <<TOML

[profiles.postmark]
transport = "postmark"
endpoint = "$url"
api_key_env = "BENCH_KEY"

[profiles.brevo]
transport = "brevo"
endpoint = "$url"
api_key_env = "BENCH_KEY"
TOML

echo "bulletin $("$bulletin" --version | cut -d' ' -f2); machine: $(nproc) cores, $(uname -sm); default settings (4 requests in flight)"
results=$work/results.jsonl
for size in $n $small; do
  python3 - "$size" "$work/ws/subscribers-$size.csv" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("email,first_name,name\n")
    for i in range(n):
        f.write(f"reader{i}@example.org,Reader{i},Reader {i}\n")
PY
  for provider in postmark brevo; do
    before=$(stats)
    (
      cd "$work/ws"
      rm -rf .bulletin
      BULLETIN_UNSUBSCRIBE_SECRET=bench BENCH_KEY=bench \
        /usr/bin/time -v -o "$work/time.txt" \
        "$bulletin" send issues/2020-06.json --profile "$provider" --list "subscribers-$size.csv" --yes >"$work/send.out"
    )
    python3 - "$work/time.txt" "$before" "$(stats)" "$size" "$provider" "$work/send.out" >>"$results" <<'PY'
import json, re, sys
time_txt, before, after = open(sys.argv[1]).read(), json.loads(sys.argv[2]), json.loads(sys.argv[3])
def field(name):
    return re.search(re.escape(name) + r": (.+)", time_txt).group(1).strip()
wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss)")
seconds = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall.split(":"))))
print(json.dumps({
    "n": int(sys.argv[4]), "provider": sys.argv[5],
    "sent": int(re.search(r"Sent: (\d+)", open(sys.argv[6]).read()).group(1)),
    "seconds": seconds, "rss_kb": int(field("Maximum resident set size (kbytes)")),
    **{k: after[k] - before[k] for k in ("requests", "messages", "bytes")},
}))
PY
  done
done

python3 - "$results" "$limit_mb" <<'PY'
import json, math, sys
rows, limit_mb = [json.loads(l) for l in open(sys.argv[1])], int(sys.argv[2])
per_request = {"postmark": 500, "brevo": 1000}
name = {"postmark": "Postmark", "brevo": "Brevo"}
heads = [f"{name[r['provider']]}, {r['n']:,}" for r in rows]
print("\n" + f"{'':30}" + "".join(f"{h:>20}" for h in heads))
def line(label, cells):
    print(f"{label:30}" + "".join(f"{c:>20}" for c in cells))
line("messages sent", [f"{r['sent']:,}" for r in rows])
line("requests made", [f"{r['requests']:,}" for r in rows])
line("fewest the limit allows", [f"{math.ceil(r['n'] / per_request[r['provider']]):,} ({per_request[r['provider']]}/req)" for r in rows])
line("request bodies", [f"{r['bytes'] / 1e6:,.0f} MB" for r in rows])
line("bytes per message", [f"{r['bytes'] / max(r['messages'], 1):,.0f}" for r in rows])
line("wall time", [f"{r['seconds']:.1f} s" for r in rows])
line("messages per second", [f"{r['sent'] / r['seconds']:,.0f}" for r in rows])
line("peak memory (max RSS)", [f"{r['rss_kb'] / 1024:.0f} MB" for r in rows])
line(f"vs the {limit_mb} MB limit", [f"{r['rss_kb'] / 1024 / limit_mb:.2f}x" for r in rows])
ok = True
for r in rows:
    fewest = math.ceil(r["n"] / per_request[r["provider"]])
    if not (r["requests"] == fewest and r["messages"] == r["n"] == r["sent"]):
        ok = False
        print(f"MISMATCH for {name[r['provider']]} at {r['n']}: see the figures above")
    if r["rss_kb"] / 1024 > limit_mb:
        ok = False
        print(f"OVER THE LIMIT: {name[r['provider']]} at {r['n']} peaks at {r['rss_kb'] / 1024:.0f} MB")
if ok:
    print(f"\nrequests = the minimum, every message once, peak memory within {limit_mb} MB")
sys.exit(0 if ok else 1)
PY
