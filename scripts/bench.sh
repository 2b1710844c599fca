#!/usr/bin/env bash
# Side-by-side benchmark of xmppd, Prosody and ejabberd with xmppload.
#
#   scripts/bench.sh [--quick] [--servers "xmppd prosody ejabberd"] [--no-docs] [--idle-only]
#
# --idle-only: registration and the idle phase only (memory per connection at scale, e.g.
# IDLE_CLIENTS=5000 scripts/bench.sh --idle-only --no-docs).
#
# Installs prosody and ejabberd from Debian when missing, starts each server
# on loopback from the configs in scripts/bench/ (never on 5222/5223), creates
# the same accounts on each by XEP-0077 in-band registration, runs the same
# xmppload profiles against each in turn while sampling the server's RSS and
# CPU from /proc, prints a table and writes it to docs/benchmarks.md (between
# the bench.sh markers, so hand-written sections survive).
#
# Same settings everywhere: STARTTLS required, one self-signed ECDSA P-256
# certificate, SASL SCRAM-SHA-1 (Prosody 0.12 has no SCRAM-SHA-256), 4096
# PBKDF2 iterations (ejabberd's fixed value), no rate limits or shapers,
# XEP-0198 stream management offered (xmppd's own, Prosody 0.12's core
# mod_smacks, ejabberd's mod_stream_mgmt) and used by the -sm and reconnect runs.
# Every process the script starts is stopped on exit (trap), by PID.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QUICK=0
WRITE_DOCS=1
IDLE_ONLY=0
SERVERS="xmppd prosody ejabberd"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --servers) SERVERS="$2"; shift ;;
    --no-docs) WRITE_DOCS=0 ;;
    --idle-only) IDLE_ONLY=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

# Ports (loopback only), below the ephemeral range (32768+) so that no
# outgoing connection or test harness can be holding them; override with env.
XMPPD_PORT=${XMPPD_PORT:-17222}
XMPPD_DEBUG=${XMPPD_DEBUG:-127.0.0.1:17280}   # pprof; set empty to disable
PROSODY_PORT=${PROSODY_PORT:-16222}
EJABBERD_PORT=${EJABBERD_PORT:-26222}
EJABBERD_DIST=${EJABBERD_DIST:-26299}
ITER=4096
MECH=SCRAM-SHA-1
PASSWORD=benchpw123       # >= 8 characters: xmppd's default minimum for in-band registration
PREFIX=bench

# Scale knobs given in the environment, recorded with the commands in the docs.
KNOBS=""
for v in IDLE_CLIENTS CHAT_CLIENTS ACK_EVERY RECONNECT_CLIENTS RECONNECT_HOLD RECONNECT_RATE; do
  if [ -n "${!v-}" ]; then KNOBS+="$v=${!v} "; fi
done

if [ "$QUICK" = 1 ]; then
  IDLE_CLIENTS=${IDLE_CLIENTS:-200}; IDLE_SECS=3s
  CHAT_CLIENTS=${CHAT_CLIENTS:-200}; CHAT_SECS=5s
  WINDOW=10; MODERATE_RATE=25      # 200 clients x 25/s = 5000 msgs/s
else
  IDLE_CLIENTS=${IDLE_CLIENTS:-2000}; IDLE_SECS=10s
  CHAT_CLIENTS=${CHAT_CLIENTS:-200}; CHAT_SECS=20s
  WINDOW=10; MODERATE_RATE=25
fi
MUC_CLIENTS=${MUC_CLIENTS:-100}; MUC_RATE=${MUC_RATE:-2}   # one room of 100 x 2 msgs/s = 20 000 copies/s
# XEP-0198: -sm asks for an <a/> every ACK_EVERY stanzas; the reconnect runs
# reset every connection after ~RECONNECT_HOLD (±50 %) and resume it, without
# chat (server CPU per resumption) and with RECONNECT_RATE msgs/s per client
# (resent stanzas, loss).
ACK_EVERY=${ACK_EVERY:-10}
RECONNECT_CLIENTS=${RECONNECT_CLIENTS:-$CHAT_CLIENTS}
RECONNECT_HOLD=${RECONNECT_HOLD:-1s}
RECONNECT_RATE=${RECONNECT_RATE:-5}
ACCOUNTS=$(( IDLE_CLIENTS > CHAT_CLIENTS ? IDLE_CLIENTS : CHAT_CLIENTS ))
ACCOUNTS=$(( ACCOUNTS > RECONNECT_CLIENTS ? ACCOUNTS : RECONNECT_CLIENTS ))

WORK=${BENCH_DIR:-$(mktemp -d /tmp/xmppd-bench.XXXXXX)}
mkdir -p "$WORK"/{bin,certs,results}
chmod 755 "$WORK"
LOG="$WORK/bench.log"
log() { echo "[bench $(date +%H:%M:%S)] $*" | tee -a "$LOG" >&2; }

# ---- cleanup: stop what we started, by PID ---------------------------------
STARTED_PIDS=()
EJ_CTL=""
cleanup() {
  set +e
  if [ -n "$EJ_CTL" ]; then $EJ_CTL stop >/dev/null 2>&1; fi
  for pid in "${STARTED_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null; fi
  done
  sleep 1
  for pid in "${STARTED_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null; fi
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }
wait_port() { # port seconds
  local i
  for i in $(seq 1 $(( $2 * 10 ))); do
    ss -ltnH "sport = :$1" 2>/dev/null | grep -q . && return 0
    sleep 0.1
  done
  return 1
}

# ---- packages ---------------------------------------------------------------
need_pkgs=()
command -v prosody >/dev/null || need_pkgs+=(prosody)
command -v ejabberdctl >/dev/null || need_pkgs+=(ejabberd)
if [ ${#need_pkgs[@]} -gt 0 ] && [[ "$SERVERS" =~ prosody|ejabberd ]]; then
  log "installing ${need_pkgs[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need_pkgs[@]}" >>"$LOG" 2>&1
fi

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

# ---- build ------------------------------------------------------------------
log "building xmppload and xmppd into $WORK/bin"
(cd "$ROOT" && go build -o "$WORK/bin/xmppload" ./cmd/xmppload)
XMPPD_BUILD_OK=1
(cd "$ROOT" && go build -o "$WORK/bin/xmppd" ./cmd/xmppd) >>"$LOG" 2>&1 || { XMPPD_BUILD_OK=0; log "xmppd does not build (see $LOG)"; }
LOAD="$WORK/bin/xmppload"

# ---- certificate shared by all servers ---------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost" -days 30 \
  -keyout "$WORK/certs/localhost.key" -out "$WORK/certs/localhost.crt" >>"$LOG" 2>&1
chmod 644 "$WORK/certs/localhost.key"

subst() { # template out key=value...
  local tpl=$1 out=$2; shift 2
  local args=() kv
  for kv in "$@"; do args+=(-e "s#@${kv%%=*}@#${kv#*=}#g"); done
  sed "${args[@]}" "$tpl" > "$out"
}

# ---- servers: start_<name> sets SERVER_PID, SERVER_PORT ----------------------
start_xmppd() {
  [ "$XMPPD_BUILD_OK" = 1 ] || return 1
  local d="$WORK/xmppd"; mkdir -p "$d/data"
  port_free "$XMPPD_PORT" || { log "port $XMPPD_PORT busy"; return 1; }
  local dbg=$XMPPD_DEBUG
  if [ -n "$dbg" ] && ! port_free "${dbg##*:}"; then log "debug port ${dbg##*:} busy: pprof disabled"; dbg=""; fi
  subst "$ROOT/scripts/bench/xmppd.toml" "$d/config.toml" DIR="$d" PORT="$XMPPD_PORT" ITER="$ITER" \
    CERTS="$WORK/certs" DEBUG="$dbg"
  # No fixed public ports beside the ones above (another run may hold them): no SOCKS5 or HTTP listener.
  printf '\n[proxy65]\nlisten = ""\n\n[http]\nlisten = ""\n' >> "$d/config.toml"
  (cd "$d" && exec "$WORK/bin/xmppd" serve -c "$d/config.toml" >"$d/stdout.log" 2>&1) &
  SERVER_PID=$!; STARTED_PIDS+=("$SERVER_PID"); SERVER_PORT=$XMPPD_PORT
  wait_port "$XMPPD_PORT" 20 || { log "xmppd did not start:"; tail -20 "$d/stdout.log" >&2; return 1; }
  XMPPD_VERSION=$("$WORK/bin/xmppd" version 2>/dev/null | head -1 || echo "?")
}

start_prosody() {
  local d="$WORK/prosody"; mkdir -p "$d/data"
  port_free "$PROSODY_PORT" || { log "port $PROSODY_PORT busy"; return 1; }
  subst "$ROOT/scripts/bench/prosody.cfg.lua" "$d/prosody.cfg.lua" DIR="$d" PORT="$PROSODY_PORT" ITER="$ITER" CERTS="$WORK/certs"
  (cd "$d" && exec prosody -F --config "$d/prosody.cfg.lua" >"$d/stdout.log" 2>&1) &
  SERVER_PID=$!; STARTED_PIDS+=("$SERVER_PID"); SERVER_PORT=$PROSODY_PORT
  wait_port "$PROSODY_PORT" 20 || { log "prosody did not start:"; tail -20 "$d/stdout.log" "$d/prosody.log" >&2; return 1; }
  PROSODY_VERSION=$(dpkg-query -W -f '${Version}' prosody 2>/dev/null || echo "?")
}

start_ejabberd() {
  local d="$WORK/ejabberd"; mkdir -p "$d"/{conf,spool,logs}
  port_free "$EJABBERD_PORT" || { log "port $EJABBERD_PORT busy"; return 1; }
  port_free "$EJABBERD_DIST" || { log "port $EJABBERD_DIST busy"; return 1; }
  cat "$WORK/certs/localhost.key" "$WORK/certs/localhost.crt" > "$d/conf/localhost.pem"
  cp /etc/ejabberd/inetrc "$d/conf/inetrc"
  subst "$ROOT/scripts/bench/ejabberd.yml" "$d/conf/ejabberd.yml" DIR="$d" PORT="$EJABBERD_PORT"
  subst "$ROOT/scripts/bench/ejabberdctl.cfg" "$d/conf/ejabberdctl.cfg" DIR="$d" DIST="$EJABBERD_DIST"
  # ejabberdctl as root always runs the node via "su ejabberd": its files must be ejabberd's.
  chown -R ejabberd:ejabberd "$d"
  EJ_CTL="ejabberdctl --config-dir $d/conf --logs $d/logs --spool $d/spool"
  # The node runs as the ejabberd user, but not through ejabberdctl's "su ejabberd": su opens a PAM session,
  # whose limits reset the soft open-files limit to 1024, and ejabberd then stopped accepting connections
  # at ~990 (emfile). ejabberd's documentation asks for the ejabberd user's file-descriptor limit to be raised
  # (limits.conf); setpriv switches user without PAM, so the node keeps this shell's raised limit (ulimit
  # above) and nothing under /etc changes. ERL_MAX_PORTS (ejabberdctl.cfg) covers the Erlang side.
  (cd "$d" && exec setpriv --reuid=ejabberd --regid=ejabberd --init-groups env HOME="$d" \
    $EJ_CTL foreground >"$d/stdout.log" 2>&1) &
  STARTED_PIDS+=("$!")
  timeout 60 $EJ_CTL started >>"$LOG" 2>&1 || { log "ejabberd did not start:"; tail -20 "$d/stdout.log" >&2; return 1; }
  wait_port "$EJABBERD_PORT" 20 || return 1
  SERVER_PID=$(pgrep -u ejabberd -f "beam.smp.*ejabberd-bench@localhost" | head -1)
  [ -n "$SERVER_PID" ] || { log "ejabberd beam.smp not found"; return 1; }
  STARTED_PIDS+=("$SERVER_PID"); SERVER_PORT=$EJABBERD_PORT
  EJABBERD_VERSION=$(dpkg-query -W -f '${Version}' ejabberd 2>/dev/null || echo "?")
}

stop_server() { # name
  local pid=$SERVER_PID
  if [ "$1" = ejabberd ] && [ -n "$EJ_CTL" ]; then
    $EJ_CTL stop >>"$LOG" 2>&1 || true
    EJ_CTL=""
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
  sleep 1
}

# ---- the runs -----------------------------------------------------------------
COMMON=(-domain localhost -tls starttls -mech "$MECH" -user-prefix "$PREFIX" -password "$PASSWORD" -q -login-concurrency 50)
CMDS_FILE="$WORK/commands.txt"; : > "$CMDS_FILE"

load() { # name phase args...
  local name=$1 phase=$2; shift 2
  local out="$WORK/results/$name-$phase.json"
  echo "xmppload ${*} -json $name-$phase.json" | sed "s#$WORK/bin/##" >> "$CMDS_FILE.$name"
  log "$name: $phase: xmppload $*"
  "$LOAD" "$@" -json "$out" > "$WORK/results/$name-$phase.txt" 2>&1 || log "$name: $phase: xmppload exited $? (see $WORK/results/$name-$phase.txt)"
  sed 's/^/    /' "$WORK/results/$name-$phase.txt" >&2
}

bench_server() { # name
  local n=$1 addr="127.0.0.1:$SERVER_PORT"
  : > "$CMDS_FILE.$n"
  load "$n" register -addr "$addr" "${COMMON[@]}" -profile idle -register -clients "$ACCOUNTS" -duration 1s -settle 100ms
  # Restart so that the idle run starts from a fresh process: memory per
  # connection is RSS growth over a baseline without registration garbage.
  stop_server "$n"
  "start_$n" || { log "$n: restart failed"; return 1; }
  addr="127.0.0.1:$SERVER_PORT"
  sleep 2
  load "$n" idle -addr "$addr" "${COMMON[@]}" -profile idle -clients "$IDLE_CLIENTS" -duration "$IDLE_SECS" -settle 3s -server-pid "$SERVER_PID"
  [ "$IDLE_ONLY" = 1 ] && return 0
  sleep 2
  load "$n" saturate -addr "$addr" "${COMMON[@]}" -profile chat -clients "$CHAT_CLIENTS" -rate 0 -window "$WINDOW" -duration "$CHAT_SECS" -settle 1s -server-pid "$SERVER_PID"
  sleep 2
  load "$n" moderate -addr "$addr" "${COMMON[@]}" -profile chat -clients "$CHAT_CLIENTS" -rate "$MODERATE_RATE" -window 100 -duration "$CHAT_SECS" -settle 1s -server-pid "$SERVER_PID"
  sleep 2
  # XEP-0045: one room of MUC_CLIENTS occupants, each sending MUC_RATE groupchat messages/s (copies counted).
  load "$n" muc -addr "$addr" "${COMMON[@]}" -profile muc -rooms 1 -clients "$MUC_CLIENTS" -rate "$MUC_RATE" -duration "$CHAT_SECS" -settle 1s -server-pid "$SERVER_PID"
  sleep 2
  load "$n" moderate-sm -addr "$addr" "${COMMON[@]}" -profile chat -clients "$CHAT_CLIENTS" -rate "$MODERATE_RATE" -window 100 -sm -ack-every "$ACK_EVERY" -duration "$CHAT_SECS" -settle 1s -server-pid "$SERVER_PID"
  sleep 2
  load "$n" reconnect -addr "$addr" "${COMMON[@]}" -profile reconnect -clients "$RECONNECT_CLIENTS" -hold "$RECONNECT_HOLD" -ack-every "$ACK_EVERY" -duration "$CHAT_SECS" -settle 1s -server-pid "$SERVER_PID"
  sleep 2
  load "$n" reconnect-chat -addr "$addr" "${COMMON[@]}" -profile reconnect -clients "$RECONNECT_CLIENTS" -hold "$RECONNECT_HOLD" -rate "$RECONNECT_RATE" -window 100 -ack-every "$ACK_EVERY" -duration "$CHAT_SECS" -settle 1s -server-pid "$SERVER_PID"
}

RAN=()
for s in $SERVERS; do
  SERVER_PID=""; SERVER_PORT=""
  log "=== $s"
  if "start_$s"; then
    log "$s: pid $SERVER_PID on 127.0.0.1:$SERVER_PORT"
    sleep 2
    if bench_server "$s"; then RAN+=("$s"); else echo "$s" >> "$WORK/failed"; fi
    stop_server "$s"
  else
    log "$s: FAILED TO START, skipped"
    echo "$s" >> "$WORK/failed"
  fi
done

# ---- table --------------------------------------------------------------------
j() { jq -r "$2 // empty" "$WORK/results/$1.json" 2>/dev/null || true; }
row() { # name -> "logins/s kib/conn msgs/s p99 cpu/100k cpu-us/msg login-ms"
  local n=$1
  local lps kib mps p99 cpu100k cpuus lms loss
  lps=$(j "$n-idle" .logins_per_sec)
  kib=$(j "$n-idle" .server_stats.kib_per_conn)
  lms=$(j "$n-idle" .server_stats.cpu_ms_per_login)
  mps=$(j "$n-saturate" .msgs_per_sec)
  cpuus=$(j "$n-saturate" .server_stats.cpu_us_per_msg)
  cpu100k=$(awk -v u="${cpuus:-0}" 'BEGIN{ if (u>0) printf "%.2f", u/10; }')
  p99=$(j "$n-moderate" .latency_ms.p99)
  local ls lm # empty when the phase did not run (--idle-only)
  ls=$(j "$n-saturate" .messages_lost); lm=$(j "$n-moderate" .messages_lost)
  loss=$(( ${ls:-0} + ${lm:-0} ))
  echo "${lps:--} ${kib:--} ${mps:--} ${p99:--} ${cpu100k:--} ${cpuus:--} ${lms:--} $loss"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a+0>0 && b+0>0) printf "%.2f", a/b; else printf "-"; }'; }

TABLE="$WORK/table.md"
{
  echo "| server | logins/s | server CPU ms/login | idle KiB/conn | msgs/s (saturation) | server CPU µs/msg | server CPU-s per 100k msgs | p99 ms @ $(( CHAT_CLIENTS * MODERATE_RATE )) msgs/s | messages lost |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for s in $SERVERS; do
    if [[ " ${RAN[*]-} " == *" $s "* ]]; then
      read -r lps kib mps p99 c100 cus lms loss <<<"$(row "$s")"
      echo "| $s | $lps | $lms | $kib | $mps | $cus | $c100 | $p99 | $loss |"
    else
      echo "| $s | (did not start) | | | | | | | |"
    fi
  done
  if [[ " ${RAN[*]-} " == *" xmppd "* ]]; then
    read -r xl xk xm xp xc xu xlm _ <<<"$(row xmppd)"
    for p in prosody ejabberd; do
      [[ " ${RAN[*]-} " == *" $p "* ]] || continue
      read -r pl pk pm pp pc pu plm _ <<<"$(row "$p")"
      echo "| xmppd/$p | $(ratio "$xl" "$pl") | $(ratio "$xlm" "$plm") | $(ratio "$xk" "$pk") | $(ratio "$xm" "$pm") | $(ratio "$xu" "$pu") | $(ratio "$xc" "$pc") | $(ratio "$xp" "$pp") | |"
    done
  fi
  echo
  echo "| server (muc: 1 room × $MUC_CLIENTS occupants, $MUC_RATE msgs/s each) | copies/s | delivery p50 ms | delivery p99 ms | server CPU µs/copy | copies lost |"
  echo "|---|---|---|---|---|---|"
  for s in $SERVERS; do
    [[ " ${RAN[*]-} " == *" $s "* ]] || continue
    echo "| $s | $(j "$s-muc" .msgs_per_sec) | $(j "$s-muc" .latency_ms.p50) | $(j "$s-muc" .latency_ms.p99) | $(j "$s-muc" .server_stats.cpu_us_per_msg) | $(j "$s-muc" .messages_lost) |"
  done
} > "$TABLE"

# XEP-0198: CPU per message with and without stream management at the same
# rate, and what a resumption costs.
smrow() { # name -> "us/msg us/msg-sm ratio ack-p99 resumes failed res-p50 res-p99 ms/resume lost dup-sm resent"
  local n=$1 a b
  a=$(j "$n-moderate" .server_stats.cpu_us_per_msg)
  b=$(j "$n-moderate-sm" .server_stats.cpu_us_per_msg)
  echo "${a:--} ${b:--} $(ratio "$b" "$a") $(j "$n-moderate-sm" .ack_latency_ms.p99 | grep . || echo -)" \
    "$(j "$n-reconnect" .resumes | grep . || echo 0) $(j "$n-reconnect" .resumes_failed | grep . || echo 0)" \
    "$(j "$n-reconnect" .resume_latency_ms.p50 | grep . || echo -) $(j "$n-reconnect" .resume_latency_ms.p99 | grep . || echo -)" \
    "$(j "$n-reconnect" .server_stats.cpu_ms_per_resume | grep . || echo -)" \
    "$(j "$n-reconnect-chat" .messages_lost | grep . || echo -)/$(j "$n-reconnect-chat" .messages_sent | grep . || echo -)" \
    "$(j "$n-reconnect-chat" .messages_sm_duplicates | grep . || echo 0)/$(j "$n-reconnect-chat" .messages_duplicated | grep . || echo 0)" \
    "$(j "$n-reconnect-chat" .messages_resent | grep . || echo 0)"
}
SMTABLE="$WORK/table-sm.md"
{
  echo "| server | server CPU µs/msg @ $(( CHAT_CLIENTS * MODERATE_RATE )) msgs/s | same with -sm | with/without SM | ack p99 ms | resumptions | failed | resume p50 ms | resume p99 ms | server CPU ms/resume | reconnect+chat lost/sent | duplicates XEP-0198/other | resent |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  for s in $SERVERS; do
    if [[ " ${RAN[*]-} " == *" $s "* ]]; then
      read -r a b r ap res fail rp50 rp99 cpr lost dup resent <<<"$(smrow "$s")"
      echo "| $s | $a | $b | $r | $ap | $res | $fail | $rp50 | $rp99 | $cpr | $lost | $dup | $resent |"
    fi
  done
  if [[ " ${RAN[*]-} " == *" xmppd "* ]]; then
    read -r xa xb _ xap _ _ xrp50 xrp99 xcpr _ <<<"$(smrow xmppd)"
    for p in prosody ejabberd; do
      [[ " ${RAN[*]-} " == *" $p "* ]] || continue
      read -r pa pb _ pap _ _ prp50 prp99 pcpr _ <<<"$(smrow "$p")"
      echo "| xmppd/$p | $(ratio "$xa" "$pa") | $(ratio "$xb" "$pb") | | $(ratio "$xap" "$pap") | | | $(ratio "$xrp50" "$prp50") | $(ratio "$xrp99" "$prp99") | $(ratio "$xcpr" "$pcpr") | | | |"
    done
  fi
} > "$SMTABLE"
echo
cat "$TABLE"
echo
cat "$SMTABLE"
echo

# ---- docs/benchmarks.md --------------------------------------------------------
if [ "$WRITE_DOCS" = 1 ]; then
  DOC="$ROOT/docs/benchmarks.md"
  GEN="$WORK/generated.md"
  {
    echo "<!-- bench.sh:begin (generated by scripts/bench.sh; edit outside these markers) -->"
    echo "## Side-by-side run ($( [ "$QUICK" = 1 ] && echo "--quick smoke" || echo "full" ))"
    echo
    echo "- date: $(date -u +'%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -sr), loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- versions: xmppd ${XMPPD_VERSION:-not run} ($(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo 'no commit')), Prosody ${PROSODY_VERSION:-not run}, ejabberd ${EJABBERD_VERSION:-not run}, $(go version | cut -d' ' -f3)"
    echo "- settings (all servers): loopback, STARTTLS required, ECDSA P-256 self-signed certificate, SASL $MECH, $ITER PBKDF2 iterations, no rate limits/shapers; load tool on the same 2 cores"
    echo "- accounts: ${PREFIX}1..${PREFIX}${ACCOUNTS} created by XEP-0077 in-band registration (xmppload -register)"
    [ -s "$WORK/failed" ] && echo "- **did not start**: $(xargs < "$WORK/failed")"
    echo
    cat "$TABLE"
    echo
    echo "Columns: logins/s and server CPU per login from the idle run ($IDLE_CLIENTS clients, 50 logins in flight, full login: TCP, STARTTLS, SCRAM, bind, roster get, presence);"
    echo "idle KiB/conn = server RSS growth / connections after a 3 s settle; saturation = $CHAT_CLIENTS clients in $(( CHAT_CLIENTS / 2 )) pairs, closed loop, $WINDOW messages in flight per client, $CHAT_SECS;"
    echo "server CPU per message = utime+stime of the server process during the measured phase / messages delivered; p99 = delivery latency at $MODERATE_RATE msgs/s per client."
    echo "Ratios are xmppd/peer (for CPU, KiB and latency lower is better)."
    echo
    echo "### XEP-0198 stream management"
    echo
    cat "$SMTABLE"
    echo
    echo "CPU per message: the moderate run ($MODERATE_RATE msgs/s per client) without and with \`-sm\` (enable with resume after bind, \`<r/>\` every $ACK_EVERY stanzas sent, every server \`<r/>\` answered);"
    echo "servers ask for acks on their own schedule (xmppd every 5 stanzas, request_every; Prosody's mod_smacks set to 5 with smacks_max_unacked_stanzas; ejabberd's mod_stream_mgmt after each stanza while none is outstanding, not configurable)."
    echo "Resumptions: $RECONNECT_CLIENTS clients with \`-profile reconnect\`, each TCP connection reset (no \`</stream:stream>\`) after ~$RECONNECT_HOLD (±50 %), then at once TCP + STARTTLS + SCRAM + \`<resume previd h/>\`; latency from dial to \`<resumed/>\`;"
    echo "server CPU per resumption = server CPU in the measured phase / resumptions (no chat in that run). The reconnect+chat run does the same with $RECONNECT_RATE msgs/s per client: lost = sent − received,"
    echo "duplicates XEP-0198 = second copies marked with an XEP-0203 delay (allowed), other = second copies without; resent = messages that arrived with a delay (sent again after a resumption)."
    echo
    echo "Commands (run by \`${KNOBS}scripts/bench.sh$( [ "$QUICK" = 1 ] && echo " --quick")\`, per server, with -addr 127.0.0.1:<port>):"
    echo
    echo '```'
    for s in "${RAN[@]}"; do sed -e "s#-addr 127.0.0.1:[0-9]*#-addr 127.0.0.1:<$s>#" -e "s#-server-pid [0-9]*#-server-pid <pid>#" "$CMDS_FILE.$s"; break; done
    echo '```'
    echo "<!-- bench.sh:end -->"
  } > "$GEN"
  if [ -f "$DOC" ] && grep -q '<!-- bench.sh:begin' "$DOC"; then
    awk -v gen="$GEN" '
      /<!-- bench.sh:begin/ { while ((getline l < gen) > 0) print l; skip=1; next }
      /<!-- bench.sh:end -->/ { skip=0; next }
      !skip { print }' "$DOC" > "$DOC.tmp" && mv "$DOC.tmp" "$DOC"
  else
    { [ -f "$DOC" ] && cat "$DOC" || echo "# Benchmarks"; echo; cat "$GEN"; } > "$DOC.tmp" && mv "$DOC.tmp" "$DOC"
  fi
  log "wrote $DOC"
fi
log "results in $WORK/results"
