#!/usr/bin/env bash
# xmppd over TCP, RFC 7395 WebSocket and XEP-0124/0206 BOSH side by side with xmppload:
#
#   scripts/bench-web.sh [CLIENTS] [SECONDS] [RATE]
#   RUNS=5 TRANSPORTS="tcp websocket" scripts/bench-web.sh 100 15 20
#
# RATE is messages/s per client (default 20): the same offered load on every transport, so that the CPU per
# message compares like with like (a closed loop would measure the load tool's own WebSocket/BOSH client instead).
# Builds xmppd and xmppload, starts xmppd on loopback (c2s 17322, HTTP 17381 or C2S_PORT/HTTP_PORT; never the
# default ports) with
# TLS everywhere (STARTTLS on TCP, wss and https on the HTTP listener), creates accounts w1…wN through the CLI,
# then runs the same chat profile over each transport in turn, RUNS times (default 3; the transports back to
# back in each run, so a run's ratios share the machine's load), while sampling the server's CPU from /proc.
# Prints logins/s and server CPU per login and per message for each run, then per transport the median and
# the spread (min–max) of the CPU per message and of its ratio to TCP's in the same run, with the load average.
# PEERS=prosody adds Prosody (Debian's package; scripts/bench/prosody.cfg.lua plus mod_bosh on plain HTTP on
# loopback, consider_bosh_secure) over TCP and over BOSH in each run, SCRAM-SHA-1 (Prosody 0.12 has no
# SCRAM-SHA-256), accounts p1…pN created by in-band registration; its ratios are to its own TCP.
# PEERS=ejabberd (or PEERS="prosody ejabberd") adds ejabberd the same way (Debian's package;
# scripts/bench/ejabberd.yml plus an ejabberd_http listener with mod_bosh at /http-bind on plain HTTP on
# loopback; SCRAM-SHA-1, ejabberd 23.01 stores SHA-1 keys), accounts e1…eN by in-band registration; its BOSH
# client waits 50 ms (-bosh-gap) before a request that would be outstanding beside another.
# The XEP-0313 archive is off unless MAM=1: its SQLite writes (the same on every transport, bound by the disk's
# fsyncs, several times the rest of a message's cost here) would make the ratio measure the disk.
# XMPPD=path runs that xmppd binary instead of building one (A/B comparisons of two builds, run alternately).
# The server is stopped on exit, by PID.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLIENTS=${1:-100}
SECS=${2:-15}
RATE=${3:-20}
RUNS=${RUNS:-3}
TRANSPORTS=${TRANSPORTS:-tcp websocket bosh}
MAM=${MAM:-0}
C2S_PORT=${C2S_PORT:-17322}   # loopback ports, overridable when another run holds them
HTTP_PORT=${HTTP_PORT:-17381}
PEERS=${PEERS:-}
PROSODY_C2S=${PROSODY_C2S:-17622}
PROSODY_HTTP=${PROSODY_HTTP:-17680}
EJABBERD_C2S=${EJABBERD_C2S:-17722}
EJABBERD_HTTP=${EJABBERD_HTTP:-17780}
EJABBERD_DIST=${EJABBERD_DIST:-17799} # Erlang distribution port (epmd-less), for ejabberdctl
PPID_PROSODY=""
PID_EJABBERD=""
EJ_CTL=""
TMP=$(mktemp -d)
PID=""
cleanup() {
  [ -n "$EJ_CTL" ] && $EJ_CTL stop >/dev/null 2>&1
  # (a server killed by the signal makes wait fail: that must not stop the cleanup under set -e)
  for p in $PID $PPID_PROSODY $PID_EJABBERD; do kill "$p" 2>/dev/null && { wait "$p" 2>/dev/null || true; }; done
  rm -rf "$TMP"
}
trap cleanup EXIT
command -v jq >/dev/null || { echo "bench-web.sh: needs jq" >&2; exit 1; }
cd "$ROOT"
if [ -n "${XMPPD:-}" ]; then cp "$XMPPD" "$TMP/xmppd"; else go build -o "$TMP/xmppd" ./cmd/xmppd; fi
go build -o "$TMP/xmppload" ./cmd/xmppload
cat >"$TMP/config.toml" <<TOML
domains = ["localhost"]
data_dir = "$TMP/data"
[c2s]
listen = "127.0.0.1:$C2S_PORT"
direct_tls_listen = ""
[http]
listen = "127.0.0.1:$HTTP_PORT"
tls = true
[auth]
scram_iterations = 4096
[debug]
listen = ""
[mam]
enabled = $([ "$MAM" = 1 ] && echo true || echo false)
[log]
level = "warn"
TOML
for i in $(seq 1 "$CLIENTS"); do echo pw | "$TMP/xmppd" user add "w$i@localhost" -c "$TMP/config.toml" >/dev/null 2>&1 || { echo "user add w$i failed" >&2; exit 1; }; done
"$TMP/xmppd" serve -c "$TMP/config.toml" >"$TMP/xmppd.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$HTTP_PORT") 2>/dev/null && break; sleep 0.1; done
kill -0 "$PID" 2>/dev/null || { echo "bench-web.sh: xmppd did not start:" >&2; tail -3 "$TMP/xmppd.log" >&2; PID=""; exit 1; }
if [[ " $PEERS " == *" prosody "* ]]; then
  command -v prosody >/dev/null || { echo "bench-web.sh: PEERS=prosody needs the prosody package" >&2; exit 1; }
  mkdir -p "$TMP/prosody/data"
  sed -e "s|@DIR@|$TMP/prosody|g" -e "s|@PORT@|$PROSODY_C2S|g" -e "s|@ITER@|4096|g" -e "s|@CERTS@|$TMP/data/certs|g" \
    -e 's|^    "smacks";|    "smacks";\n    "bosh";|' \
    -e "s|^VirtualHost \"localhost\"|http_ports = { $PROSODY_HTTP }\nhttp_interfaces = { \"127.0.0.1\" }\nhttps_ports = { }\nconsider_bosh_secure = true\n\nVirtualHost \"localhost\"|" \
    scripts/bench/prosody.cfg.lua >"$TMP/prosody/prosody.cfg.lua"
  (cd "$TMP/prosody" && exec prosody -F --config "$TMP/prosody/prosody.cfg.lua" >"$TMP/prosody/stdout.log" 2>&1) &
  PPID_PROSODY=$!
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$PROSODY_HTTP") 2>/dev/null && break; sleep 0.1; done
  kill -0 "$PPID_PROSODY" 2>/dev/null || { echo "bench-web.sh: prosody did not start:" >&2; tail -3 "$TMP/prosody/stdout.log" >&2; PPID_PROSODY=""; exit 1; }
  "$TMP/xmppload" -addr 127.0.0.1:"$PROSODY_C2S" -domain localhost -clients "$CLIENTS" -user-prefix p -password pw12345678 \
    -register -profile idle -duration 1s -cafile "$TMP/data/certs/localhost.crt" -mech SCRAM-SHA-1 >"$TMP/prosody/register.txt" 2>&1 ||
    { echo "bench-web.sh: registration on prosody failed:" >&2; tail -5 "$TMP/prosody/register.txt" >&2; exit 1; }
  TRANSPORTS="$TRANSPORTS prosody-tcp prosody-bosh"
fi
if [[ " $PEERS " == *" ejabberd "* ]]; then
  command -v ejabberdctl >/dev/null || { echo "bench-web.sh: PEERS=ejabberd needs the ejabberd package" >&2; exit 1; }
  E="$TMP/ejabberd"
  mkdir -p "$E"/{conf,spool,logs}
  chmod 711 "$TMP" # ejabberdctl runs the node as user ejabberd: it must reach its directory
  cat "$TMP/data/certs/localhost.key" "$TMP/data/certs/localhost.crt" >"$E/conf/localhost.pem"
  cp /etc/ejabberd/inetrc "$E/conf/inetrc"
  sed -e "s|@DIR@|$E|g" -e "s|@PORT@|$EJABBERD_C2S|g" \
    -e "s|^    starttls_required: true\$|&\n  -\n    port: $EJABBERD_HTTP\n    ip: \"127.0.0.1\"\n    module: ejabberd_http\n    request_handlers:\n      /http-bind: mod_bosh\n    backlog: 1024|" \
    -e 's|^modules:$|&\n  mod_bosh: {}|' scripts/bench/ejabberd.yml >"$E/conf/ejabberd.yml"
  sed -e "s|@DIR@|$E|g" -e "s|@DIST@|$EJABBERD_DIST|g" -e "s|ejabberd-bench@|ejabberd-benchweb@|" \
    scripts/bench/ejabberdctl.cfg >"$E/conf/ejabberdctl.cfg"
  chown -R ejabberd:ejabberd "$E"
  EJ_CTL="ejabberdctl --config-dir $E/conf --logs $E/logs --spool $E/spool"
  (cd "$E" && exec $EJ_CTL foreground >"$E/stdout.log" 2>&1) &
  PID_EJABBERD=$!
  timeout 60 $EJ_CTL started >/dev/null 2>&1 || { echo "bench-web.sh: ejabberd did not start:" >&2; tail -5 "$E/stdout.log" >&2; exit 1; }
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$EJABBERD_HTTP") 2>/dev/null && break; sleep 0.1; done
  BEAM=$(pgrep -u ejabberd -f "beam.smp.*ejabberd-benchweb@localhost" | head -1)
  [ -n "$BEAM" ] || { echo "bench-web.sh: ejabberd's beam.smp not found" >&2; exit 1; }
  "$TMP/xmppload" -addr 127.0.0.1:"$EJABBERD_C2S" -domain localhost -clients "$CLIENTS" -user-prefix e -password pw12345678 \
    -register -profile idle -duration 1s -cafile "$TMP/data/certs/localhost.crt" -mech SCRAM-SHA-1 >"$E/register.txt" 2>&1 ||
    { echo "bench-web.sh: registration on ejabberd failed:" >&2; tail -5 "$E/register.txt" >&2; exit 1; }
  TRANSPORTS="$TRANSPORTS ejabberd-tcp ejabberd-bosh"
fi
common=(-domain localhost -clients "$CLIENTS" -user-prefix w -password pw -profile chat -rate "$RATE" -duration "${SECS}s"
  -cafile "$TMP/data/certs/localhost.crt" -mech SCRAM-SHA-256 -server-pid "$PID")
args_for() {
  local pr=(-user-prefix p -password pw12345678 -mech SCRAM-SHA-1 -server-pid "$PPID_PROSODY")
  local ej=(-user-prefix e -password pw12345678 -mech SCRAM-SHA-1 -server-pid "${BEAM:-}")
  case "$1" in
    prosody-tcp) echo "${pr[*]} -addr 127.0.0.1:$PROSODY_C2S -tls starttls" ;;
    prosody-bosh) echo "${pr[*]} -addr 127.0.0.1:$PROSODY_HTTP -transport bosh -tls none" ;;
    ejabberd-tcp) echo "${ej[*]} -addr 127.0.0.1:$EJABBERD_C2S -tls starttls" ;;
    # -bosh-gap: ejabberd 23.01 leaves a request that overtook its predecessor unanswered (docs/benchmarks.md).
    ejabberd-bosh) echo "${ej[*]} -addr 127.0.0.1:$EJABBERD_HTTP -transport bosh -tls none -bosh-gap 50ms" ;;
    tcp) echo "-addr 127.0.0.1:$C2S_PORT -tls starttls" ;;
    websocket) echo "-addr 127.0.0.1:$HTTP_PORT -transport websocket -tls direct" ;;
    bosh) echo "-addr 127.0.0.1:$HTTP_PORT -transport bosh -tls direct" ;;
  esac
}
printf '%-4s %-13s %9s %10s %10s %12s %8s %8s  %s\n' run transport logins/s ms/login µs/msg "ratio/tcp" lost errors load
for run in $(seq 1 "$RUNS"); do
  for t in $TRANSPORTS; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    # shellcheck disable=SC2046
    "$TMP/xmppload" "${common[@]}" $(args_for "$t") -json "$TMP/$t.$run.json" >"$TMP/$t.$run.txt" 2>&1 || true
    f="$TMP/$t.$run.json"
    if [ ! -s "$f" ] || [ "$(jq -r .logins "$f")" = 0 ]; then echo "$run $t: no logins"; tail -5 "$TMP/$t.$run.txt"; tail -5 "$TMP/xmppd.log"; continue; fi
    us=$(jq -r '.server_stats.cpu_us_per_msg' "$f")
    ratio=""
    base=tcp
    case "$t" in prosody-* | ejabberd-*) base=${t%%-*}-tcp ;; esac
    if [ "$t" != "$base" ] && [[ "$t" != *-tcp ]] && [ -s "$TMP/$base.$run.json" ]; then
      ratio=$(jq -r --argjson u "$us" '($u / .server_stats.cpu_us_per_msg * 100 | round) / 100' "$TMP/$base.$run.json")
      echo "$t $ratio" >>"$TMP/ratios"
    fi
    echo "$t $us" >>"$TMP/us"
    printf '%-4s %-13s %9.0f %10.2f %10.1f %12s %8s %8s  %s\n' "$run" "$t" "$(jq -r .logins_per_sec "$f")" \
      "$(jq -r .server_stats.cpu_ms_per_login "$f")" "$us" "${ratio:+${ratio}×}" "$(jq -r .messages_lost "$f")" \
      "$(jq -r '[.errors[]?] | add // 0' "$f")" "$load"
    # The kinds of errors the load tool counted, when there were any.
    if [ "$(jq -r '[.errors[]?] | add // 0' "$f")" != 0 ]; then echo "     errors: $(jq -c .errors "$f")"; fi
  done
done
# median and spread: sorted values, the middle one (the lower middle for an even count).
stats() { sort -g | awk '{v[NR]=$1} END {if (NR) printf "median %s (min %s, max %s, n=%d)", v[int((NR+1)/2)], v[1], v[NR], NR}'; }
echo
for t in $TRANSPORTS; do
  printf '%-13s µs/msg: %s' "$t" "$(awk -v t="$t" '$1==t {print $2}' "$TMP/us" 2>/dev/null | stats)"
  if [ "$t" != tcp ] && [[ "$t" != *-tcp ]] && [ -s "$TMP/ratios" ]; then
    printf '; ratio to its tcp: %s' "$(awk -v t="$t" '$1==t {print $2}' "$TMP/ratios" | stats)"
  fi
  echo
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
