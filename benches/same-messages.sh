#!/usr/bin/env bash
# Speed work must not change what readers receive. This dry-runs the sample issue to the same
# list with two builds of bulletin and compares every message they write, byte for byte, and
# the summaries they print. Only the Date header and the MIME boundaries (random per message)
# are set aside.
#
#   bash benches/same-messages.sh OLD_BULLETIN [NEW_BULLETIN]
#
# OLD_BULLETIN is a binary built from the revision to compare with, e.g.:
#   git worktree add /tmp/old main && (cd /tmp/old && cargo build --release)
#   bash benches/same-messages.sh /tmp/old/target/release/bulletin
# NEW_BULLETIN defaults to this checkout's release build (built if needed).
#
# The list has 300 readers with accents and commas in their names, duplicates in other case,
# an internationalised domain and an invalid row. Exits 1 if anything differs.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  sed -n '2,13s/^# \{0,1\}//p' "$0" >&2
  exit 2
fi
old=$(realpath "$1")
if [ $# -eq 2 ]; then
  new=$(realpath "$2")
else
  cargo build --release --quiet
  new=$PWD/target/release/bulletin
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ws=$work/ws
mkdir -p "$ws"
cp -r issues layouts bulletin.toml "$ws/"
# A real send needs published images; the dry run writes what that send would.
sed -i '0,/"language": "en",/s||"language": "en",\n  "images_url": "https://example.org/newsletter/2020-06/",|' \
  "$ws/issues/2020-06.json"
python3 - "$ws/list.csv" <<'PY'
import sys
rows = ["email,first_name,name"]
rows += [f'reader{i}@example.org,Réader{i},"Reader, {i}"' for i in range(300)]
rows += ["READER5@Example.org,Dup,Dup", "josé@exämple.org,José,José", "bad-address,X,X",
         "reader7@example.org,Dup2,Dup2"]
open(sys.argv[1], "w").write("\n".join(rows) + "\n")
PY

for side in old new; do
  bin=${!side}
  (cd "$ws" && BULLETIN_UNSUBSCRIBE_SECRET=same-messages "$bin" send issues/2020-06.json \
    --list list.csv --dry-run "$work/$side" | sed "s|$work/$side|OUT|" >"$work/$side.summary")
done

python3 - "$work/old" "$work/new" <<'PY'
import os, re, sys
old, new = sys.argv[1:3]
def normalised(path):
    text = open(path, "rb").read()
    text = re.sub(rb"^Date: .*$", b"Date: -", text, flags=re.M)
    for i, boundary in enumerate(re.findall(rb'boundary="([^"]+)"', text)):
        text = text.replace(boundary, b"boundary-%d" % i)
    return text
names = lambda d: sorted(f for f in os.listdir(d) if f.endswith(".eml"))
if names(old) != names(new):
    print(f"different readers: {sorted(set(names(old)) ^ set(names(new)))[:10]}")
    sys.exit(1)
differ = [f for f in names(old) if normalised(f"{old}/{f}") != normalised(f"{new}/{f}")]
print(f"{len(names(old))} messages compared, {len(differ)} differ"
      + (f": {', '.join(differ[:5])}" if differ else ""))
sys.exit(1 if differ else 0)
PY
if diff "$work/old.summary" "$work/new.summary"; then
  echo "summaries identical"
else
  echo "the summaries differ (above)"
  exit 1
fi
