#!/usr/bin/env bash
# Lists the functions of bulletin that a render of the sample runs, hottest first, by their
# linker names, into benches/hot-functions.txt. build.rs gives that file to the linker
# (lld's --symbol-ordering-file) for a release build, which then lays those functions out
# together at the start of the code: a render reads about 1.7 MB of code, spread over the
# binary's 11 MB of it without the list, so each of its page faults on code (the kernel maps
# 64 KB around each) brings in less of what runs. Measured in the ninth round: 38 fewer page
# faults a render (534 to 496) and 4.5% less time.
#
# Run it again after a change that moves the work a render does (new dependencies, a new
# version of one, a large change to the pipeline): a name that no longer exists is skipped
# by the linker, and a function missing from the list is laid out as before, so a stale list
# costs speed, never correctness.
#
#   bash benches/hot-functions.sh      # installs valgrind (apt) if missing
#
# Counts instructions with valgrind's callgrind, which is repeatable whatever else the
# machine is doing; a function's rank is the instructions spent in it, not in its callees.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null; then
  apt-get update -qq && apt-get install -y -qq valgrind >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet --bin bulletin
cp target/release/bulletin "$work/bulletin"
cp -r issues layouts "$work/"
(
  cd "$work"
  valgrind --tool=callgrind --demangle=no --callgrind-out-file=callgrind.out \
    ./bulletin render issues/2020-06.json -o out >/dev/null 2>&1
)

python3 - "$work/callgrind.out" "$work/list" <<'EOF'
# Self cost per function of the binary, from callgrind's compressed format: `ob=`/`cob=`
# and `fn=`/`cfn=` name ids, cost lines after `fn=`, and each `calls=` line followed by
# the call's inclusive cost, which is not the caller's own.
import collections, re, sys

objects, names, owner = {}, {}, {}
cost = collections.Counter()
current_object = current = None
call_cost_next = False

def define(table, line, key):
    m = re.match(key + r"=\((\d+)\)(?: (.*))?", line)
    if m.group(2):
        table[m.group(1)] = m.group(2)
    return m.group(1)

for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("ob="):
        current_object = objects.get(define(objects, line, "ob"))
    elif line.startswith("cob="):
        define(objects, line, "cob")
    elif line.startswith("cfn="):
        define(names, line, "cfn")
    elif line.startswith("fn="):
        current = define(names, line, "fn")
        owner[current] = current_object
    elif line.startswith("calls="):
        call_cost_next = True
    elif line[:1].isdigit() or line[:1] in "+-*":
        if call_cost_next:
            call_cost_next = False
            continue
        fields = line.split()
        if len(fields) >= 2 and current:
            cost[current] += int(fields[1])

ours = [
    (names[f], c)
    for f, c in cost.items()
    # A function without a symbol is named by its address, which the linker cannot use.
    if (owner.get(f) or "").endswith("/bulletin") and c > 0 and not names[f].startswith("0x")
]
ours.sort(key=lambda fc: -fc[1])
seen, listed = set(), []
for name, _ in ours:
    name = re.sub(r"'\d+$", "", name)  # callgrind's mark of a recursive call
    if name not in seen:
        seen.add(name)
        listed.append(name)
with open(sys.argv[2], "w") as out:
    out.write("\n".join(listed) + "\n")
print(f"{len(listed)} functions")
EOF

# Written beside the old list, then renamed over it: a build never reads half a list.
cp "$work/list" benches/.hot-functions.txt.new
mv benches/.hot-functions.txt.new benches/hot-functions.txt
echo "wrote benches/hot-functions.txt"
