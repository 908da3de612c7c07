# Sourced by the SMTP benches (compare-smtp.sh, list-memory.sh): Postfix's smtp-sink started
# on a free loopback port and stopped by its PID, and a copy of the sample workspace ready for
# a real send. Expects $work, a temporary folder the caller removes.

sink=
port=

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
