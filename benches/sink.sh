# Sourced by the SMTP benches (compare-smtp.sh, list-memory.sh): the check for the tools they
# need, Postfix's smtp-sink started on a free loopback port and stopped by its PID, and a copy
# of the sample workspace with its settings, ready for a real send to it. Expects $work, a
# temporary folder the caller removes.

sink=
port=

# require_tools SCRIPT [smtp-source]: stops, saying how to install them, unless smtp-sink (and
# smtp-source when asked) and GNU time are here. The benches install nothing themselves.
require_tools() {
  local script=$1 used="postfix's smtp-sink is"
  local missing=()
  [ -x /usr/sbin/smtp-sink ] || missing+=(postfix)
  if [ "${2:-}" = smtp-source ]; then
    used="postfix's smtp-sink and smtp-source are"
    [ -x /usr/sbin/smtp-source ] || [ ${#missing[@]} -gt 0 ] || missing+=(postfix)
  fi
  [ -x /usr/bin/time ] || missing+=(time)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "$script needs ${missing[*]}. On Debian or Ubuntu:" >&2
    echo "  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}" >&2
    echo "(only $used used; its mail server need not run)" >&2
    exit 1
  fi
}

# smtp-sink on a free loopback port; it refuses to keep running as root without -u. It offers
# PIPELINING, as Postfix's smtpd does; smtp-source does not use it (its manual says so).
start_sink() {
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  local as_user=()
  [ "$(id -u)" -ne 0 ] || as_user=(-u nobody)
  /usr/sbin/smtp-sink "${as_user[@]}" "127.0.0.1:$port" 1024 &
  sink=$!
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
}

stop_sink() {
  if [ -n "$sink" ]; then
    kill "$sink" 2>/dev/null || true
    wait "$sink" 2>/dev/null || true
    sink=
  fi
}

# sample_workspace DIR: the sample issue and layouts in DIR, its images said to be published
# (a real send needs them to be).
sample_workspace() {
  mkdir -p "$1"
  cp -r issues layouts "$1/"
  sed -i '0,/"language": "en",/s||"language": "en",\n  "images_url": "https://example.org/newsletter/2020-06/",|' \
    "$1/issues/2020-06.json"
}

# bench_settings NAME:POOL...: the workspace's bulletin.toml on stdout: the sender and the
# unsubscribe settings, and one SMTP profile NAME to the sink per pool size. The unsubscribe
# secret it names is exported below.
bench_settings() {
  cat <<EOF
[sender]
from = "Bench <newsletter@example.org>"
list_id = "Bench newsletter <bench.example.org>"

[unsubscribe]
url = "https://example.org/unsubscribe/{token}"
mailto = "unsubscribe@example.org"
secret_env = "BULLETIN_UNSUBSCRIBE_SECRET"
EOF
  local profile
  for profile in "$@"; do
    printf '\n[profiles.%s]\ntransport = "smtp"\nhost = "127.0.0.1"\nport = %s\nsecurity = "none"\npool = %s\n' \
      "${profile%%:*}" "$port" "${profile##*:}"
  done
}
export BULLETIN_UNSUBSCRIBE_SECRET=bench-secret-not-for-production
