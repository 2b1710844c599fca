#!/usr/bin/env bash
# Side-by-side benchmark of xmppd, Prosody and ejabberd with xmppload.
#
#   scripts/bench.sh [--quick] [--servers "xmppd prosody ejabberd"] [--no-docs] [--idle-only] [--phases "..."]
#
# --idle-only: registration and the idle phase only (memory per connection at scale, e.g.
# IDLE_CLIENTS=5000 scripts/bench.sh --idle-only --no-docs).
# --phases: registration and only these measured phases (idle saturate moderate moderate-wide presence muc
# moderate-sm reconnect reconnect-chat), e.g. --phases "moderate-wide presence" --no-docs.
# Phases: idle (memory, logins), saturate, moderate (CHAT_CLIENTS × 25 msgs/s), moderate-wide (WIDE_CLIENTS
# × 25 msgs/s), presence (the roster profile, half the contacts online), muc, moderate-sm, reconnect,
# reconnect-chat; each measured xmppd phase leaves a CPU profile, results/xmppd-<phase>.pprof.
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
# mod_smacks, ejabberd's mod_stream_mgmt) and used by the -sm and reconnect runs,
# no message archive (the peers' configs load no mod_mam; BENCH_ARCHIVE=true turns
# xmppd's XEP-0313 archives on, its default outside this script).
# Every process the script starts is stopped on exit (trap), by PID.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QUICK=0
WRITE_DOCS=1
IDLE_ONLY=0
SERVERS="xmppd prosody ejabberd"
PHASES=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --servers) SERVERS="$2"; shift ;;
    --no-docs) WRITE_DOCS=0 ;;
    --idle-only) IDLE_ONLY=1 ;;
    --phases) PHASES="$2"; shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

# Ports (loopback only), below the ephemeral range (32768+) so that no
# outgoing connection or test harness can be holding them; override with env
# (XMPPD_PORT, XMPPD_DEBUG, PROSODY_PORT, EJABBERD_PORT, EJABBERD_DIST: scripts/bench/servers.sh).
ITER=4096
MECH=SCRAM-SHA-1
PASSWORD=benchpw123       # >= 8 characters: xmppd's default minimum for in-band registration
PREFIX=bench

# Scale knobs given in the environment, recorded with the commands in the docs.
KNOBS=""
for v in IDLE_CLIENTS CHAT_CLIENTS ACK_EVERY RECONNECT_CLIENTS RECONNECT_HOLD RECONNECT_RATE WIDE_CLIENTS \
  PRESENCE_CLIENTS PRESENCE_ROSTER PRESENCE_RATE STAGGER WIDE_RATE BENCH_ARCHIVE; do
  if [ -n "${!v-}" ]; then KNOBS+="$v=${!v} "; fi
done

if [ "$QUICK" = 1 ]; then
  IDLE_CLIENTS=${IDLE_CLIENTS:-200}; IDLE_SECS=3s
  CHAT_CLIENTS=${CHAT_CLIENTS:-200}; CHAT_SECS=5s
  WINDOW=10; MODERATE_RATE=25      # 200 clients x 25/s = 5000 msgs/s
  WIDE_CLIENTS=${WIDE_CLIENTS:-400}; PRESENCE_CLIENTS=${PRESENCE_CLIENTS:-100}; PRESENCE_ROSTER=${PRESENCE_ROSTER:-100}
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
# Issue 17's moderate rate at scale: WIDE_CLIENTS clients × WIDE_RATE msgs/s each (2,000 × 25 = 50,000 msgs/s
# offered, beyond what 2 shared cores deliver: WIDE_RATE=2.5 is the moderate run's 5,000 msgs/s over 2,000 clients).
WIDE_CLIENTS=${WIDE_CLIENTS:-2000}
WIDE_RATE=${WIDE_RATE:-${MODERATE_RATE}}
# Presence: PRESENCE_CLIENTS users online, each with PRESENCE_ROSTER mutual contacts of whom half are online
# (the rosters span 2 × PRESENCE_CLIENTS accounts <PRESENCE_PREFIX>1…, every second one logged in), each sending
# PRESENCE_RATE presence updates/s. The subscriptions are set up once, right after registration (presence-setup),
# on accounts of their own, so that no other phase's logins carry a roster or a presence broadcast.
PRESENCE_CLIENTS=${PRESENCE_CLIENTS:-200}
PRESENCE_ROSTER=${PRESENCE_ROSTER:-200}
PRESENCE_RATE=${PRESENCE_RATE:-1}
PRESENCE_PREFIX=roster
PRESENCE_ACCOUNTS=$(( 2 * PRESENCE_CLIENTS ))
# STAGGER=1: the runs at a fixed rate (moderate*, presence, reconnect-chat) spread their senders over each period
# (xmppload -stagger) instead of all sending on the same tick; off by default, so figures compare with the history.
PACE=()
[ "${STAGGER:-0}" = 1 ] && PACE=(-stagger)
ACCOUNTS=$(( IDLE_CLIENTS > CHAT_CLIENTS ? IDLE_CLIENTS : CHAT_CLIENTS ))
ACCOUNTS=$(( ACCOUNTS > RECONNECT_CLIENTS ? ACCOUNTS : RECONNECT_CLIENTS ))
[ "$IDLE_ONLY" = 1 ] || ACCOUNTS=$(( ACCOUNTS > WIDE_CLIENTS ? ACCOUNTS : WIDE_CLIENTS ))

WORK=${BENCH_DIR:-$(mktemp -d /tmp/xmppd-bench.XXXXXX)}
# shellcheck source=scripts/bench/servers.sh
. "$ROOT/scripts/bench/servers.sh"
bench_setup

# ---- the runs -----------------------------------------------------------------
COMMON=(-domain localhost -tls starttls -mech "$MECH" -user-prefix "$PREFIX" -password "$PASSWORD" -q -login-concurrency 50)
PCOMMON=(-domain localhost -tls starttls -mech "$MECH" -user-prefix "$PRESENCE_PREFIX" -password "$PASSWORD" -q -login-concurrency 50)
CMDS_FILE="$WORK/commands.txt"; : > "$CMDS_FILE"

# want phase: whether --phases (default: all) includes it.
want() { [ -z "$PHASES" ] || [[ " $PHASES " == *" $1 "* ]]; }

# load name phase args...: one recorded xmppload run. Every measured xmppd phase (one with -server-pid) also
# saves xmppd's CPU profile of that phase as results/xmppd-<phase>.pprof (go tool pprof reads it).
load() {
  local name=$1 phase=$2; shift 2
  case "$phase" in register*|presence-setup) ;; *) want "$phase" || return 0 ;; esac
  local args=("$@")
  if [ "$name" = xmppd ] && [ -n "${XMPPD_PPROF-}" ] && [[ " $* " == *" -server-pid "* ]]; then
    args+=(-server-pprof "$XMPPD_PPROF" -server-pprof-out "$WORK/results/xmppd-$phase.pprof")
  fi
  if [[ " $* " == *" -server-pid "* ]]; then server_quiet "$SERVER_PID"; fi
  echo "xmppload ${args[*]} -json $name-$phase.json" | sed -e "s#$WORK/results/##g" -e "s#$WORK/bin/##g" >> "$CMDS_FILE.$name"
  log "$name: $phase: xmppload ${args[*]}"
  xl_run "$name-$phase" "${args[@]}"
}

bench_server() { # name
  local n=$1 addr="127.0.0.1:$SERVER_PORT"
  : > "$CMDS_FILE.$n"
  load "$n" register -addr "$addr" "${COMMON[@]}" -profile idle -register -clients "$ACCOUNTS" -duration 1s -settle 100ms
  if [ "$IDLE_ONLY" = 0 ] && want presence; then
    load "$n" register-roster -addr "$addr" "${PCOMMON[@]}" -profile idle -register -clients "$PRESENCE_ACCOUNTS" -duration 1s -settle 100ms
    # All the presence accounts at once (an offline one cannot approve a subscription): each sends a subscribe
    # to its contacts and approves theirs (RFC 6121 §3.1), until the rosters are mutual ('both'); the
    # presence run checks them again at login (rosters incomplete). -server-pid: before each check xmppload waits
    # for the server to quieten (Prosody's file storage is busy for minutes after the storm).
    load "$n" presence-setup -addr "$addr" "${PCOMMON[@]}" -profile roster -roster-size "$PRESENCE_ROSTER" -clients "$PRESENCE_ACCOUNTS" -rate 0.001 -duration 1s -settle 100ms -server-pid "$SERVER_PID"
  fi
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
  load "$n" moderate -addr "$addr" "${COMMON[@]}" -profile chat -clients "$CHAT_CLIENTS" -rate "$MODERATE_RATE" -window 100 -duration "$CHAT_SECS" -settle 1s ${PACE[@]+"${PACE[@]}"} -server-pid "$SERVER_PID"
  sleep 2
  load "$n" moderate-wide -addr "$addr" "${COMMON[@]}" -profile chat -clients "$WIDE_CLIENTS" -rate "$WIDE_RATE" -window 100 -duration "$CHAT_SECS" -settle 2s ${PACE[@]+"${PACE[@]}"} -server-pid "$SERVER_PID"
  sleep 2
  load "$n" presence -addr "$addr" "${PCOMMON[@]}" -profile roster -roster-size "$PRESENCE_ROSTER" -roster-online 0.5 -clients "$PRESENCE_ACCOUNTS" -rate "$PRESENCE_RATE" -duration "$CHAT_SECS" -settle 2s ${PACE[@]+"${PACE[@]}"} -server-pid "$SERVER_PID"
  sleep 2
  # XEP-0045: one room of MUC_CLIENTS occupants, each sending MUC_RATE groupchat messages/s (copies counted).
  load "$n" muc -addr "$addr" "${COMMON[@]}" -profile muc -rooms 1 -clients "$MUC_CLIENTS" -rate "$MUC_RATE" -duration "$CHAT_SECS" -settle 1s -server-pid "$SERVER_PID"
  sleep 2
  load "$n" moderate-sm -addr "$addr" "${COMMON[@]}" -profile chat -clients "$CHAT_CLIENTS" -rate "$MODERATE_RATE" -window 100 -sm -ack-every "$ACK_EVERY" -duration "$CHAT_SECS" -settle 1s ${PACE[@]+"${PACE[@]}"} -server-pid "$SERVER_PID"
  sleep 2
  load "$n" reconnect -addr "$addr" "${COMMON[@]}" -profile reconnect -clients "$RECONNECT_CLIENTS" -hold "$RECONNECT_HOLD" -ack-every "$ACK_EVERY" -duration "$CHAT_SECS" -settle 1s -server-pid "$SERVER_PID"
  sleep 2
  load "$n" reconnect-chat -addr "$addr" "${COMMON[@]}" -profile reconnect -clients "$RECONNECT_CLIENTS" -hold "$RECONNECT_HOLD" -rate "$RECONNECT_RATE" -window 100 -ack-every "$ACK_EVERY" -duration "$CHAT_SECS" -settle 1s ${PACE[@]+"${PACE[@]}"} -server-pid "$SERVER_PID"
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
# wrow / prow: the xmppd/peer ratio rows of the moderate-wide and presence tables.
wrow() {
  [[ " ${RAN[*]-} " == *" xmppd "* ]] || return 0
  local p f
  for p in prosody ejabberd; do
    [[ " ${RAN[*]-} " == *" $p "* ]] || continue
    echo -n "| xmppd/$p "
    for f in .msgs_per_sec .server_stats.cpu_us_per_msg .latency_ms.p50 .latency_ms.p99 .latency_ms.p999; do
      echo -n "| $(ratio "$(j xmppd-moderate-wide "$f")" "$(j "$p-moderate-wide" "$f")") "
    done
    echo "| |"
  done
}
prow() {
  [[ " ${RAN[*]-} " == *" xmppd "* ]] || return 0
  local p
  for p in prosody ejabberd; do
    [[ " ${RAN[*]-} " == *" $p "* ]] || continue
    echo "| xmppd/$p | | $(ratio "$(j xmppd-presence .presences_per_sec)" "$(j "$p-presence" .presences_per_sec)") | | $(ratio "$(j xmppd-presence .server_stats.cpu_us_per_msg)" "$(j "$p-presence" .server_stats.cpu_us_per_msg)") | $(ratio "$(j xmppd-moderate .server_stats.cpu_us_per_msg)" "$(j "$p-moderate" .server_stats.cpu_us_per_msg)") | $(ratio "$(j xmppd-presence .presence_latency_ms.p50)" "$(j "$p-presence" .presence_latency_ms.p50)") | $(ratio "$(j xmppd-presence .presence_latency_ms.p99)" "$(j "$p-presence" .presence_latency_ms.p99)") | $(ratio "$(j xmppd-presence .presence_latency_ms.p999)" "$(j "$p-presence" .presence_latency_ms.p999)") | |"
  done
}

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
  echo
  echo "| server (moderate rate at scale: $WIDE_CLIENTS clients × $WIDE_RATE msgs/s) | msgs/s | server CPU µs/msg | delivery p50 ms | p99 ms | p99.9 ms | messages lost |"
  echo "|---|---|---|---|---|---|---|"
  for s in $SERVERS; do
    [[ " ${RAN[*]-} " == *" $s "* ]] || continue
    echo "| $s | $(j "$s-moderate-wide" .msgs_per_sec) | $(j "$s-moderate-wide" .server_stats.cpu_us_per_msg) | $(j "$s-moderate-wide" .latency_ms.p50) | $(j "$s-moderate-wide" .latency_ms.p99) | $(j "$s-moderate-wide" .latency_ms.p999) | $(j "$s-moderate-wide" .messages_lost) |"
  done
  wrow xmppd
  echo
  echo "| server (presence: $PRESENCE_CLIENTS online of $PRESENCE_ACCOUNTS, $PRESENCE_ROSTER contacts each, half online, $PRESENCE_RATE update/s each) | updates sent | deliveries/s | delivered/expected | server CPU µs/delivered presence | server CPU µs/msg @ $(( CHAT_CLIENTS * MODERATE_RATE )) msgs/s | presence p50 ms | p99 ms | p99.9 ms | rosters incomplete |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for s in $SERVERS; do
    [[ " ${RAN[*]-} " == *" $s "* ]] || continue
    echo "| $s | $(j "$s-presence" .presences_sent) | $(j "$s-presence" .presences_per_sec) | $(j "$s-presence" .presences_delivered)/$(j "$s-presence" .presences_expected) | $(j "$s-presence" .server_stats.cpu_us_per_msg) | $(j "$s-moderate" .server_stats.cpu_us_per_msg) | $(j "$s-presence" .presence_latency_ms.p50) | $(j "$s-presence" .presence_latency_ms.p99) | $(j "$s-presence" .presence_latency_ms.p999) | $(j "$s-presence" '.roster_incomplete // 0') |"
  done
  prow
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
    echo "- settings (all servers): loopback, STARTTLS required, ECDSA P-256 self-signed certificate, SASL $MECH, $ITER PBKDF2 iterations, no rate limits/shapers, xmppd archive ${BENCH_ARCHIVE:-false} (peers: none); load tool on the same 2 cores"
    echo "- accounts: ${PREFIX}1..${PREFIX}${ACCOUNTS} created by XEP-0077 in-band registration (xmppload -register)"
    [ -s "$WORK/failed" ] && echo "- **did not start**: $(xargs < "$WORK/failed")"
    echo
    cat "$TABLE"
    echo
    echo "Columns: logins/s and server CPU per login from the idle run ($IDLE_CLIENTS clients, 50 logins in flight, full login: TCP, STARTTLS, SCRAM, bind, roster get, presence);"
    echo "idle KiB/conn = server RSS growth / connections after a 3 s settle; saturation = $CHAT_CLIENTS clients in $(( CHAT_CLIENTS / 2 )) pairs, closed loop, $WINDOW messages in flight per client, $CHAT_SECS;"
    echo "server CPU per message = utime+stime of the server process during the measured phase / messages delivered; p99 = delivery latency at $MODERATE_RATE msgs/s per client."
    echo "Moderate rate at scale: $WIDE_CLIENTS clients in pairs, $WIDE_RATE msgs/s each (at most 100 in flight per client), $CHAT_SECS."
    echo "Presence: \`-profile roster -roster-online 0.5\` over ${PRESENCE_PREFIX}1..${PRESENCE_PREFIX}${PRESENCE_ACCOUNTS} (mutual subscriptions set up once after registration: presence-setup);"
    echo "every second account logged in, so half of each roster is online; deliveries are updates of this run received from a contact, expected = each update × the sender's online contacts;"
    echo "the copy a server echoes to the sender's own resource (RFC 6121 §4.4.2) is not counted; server CPU per delivered presence = server CPU in the measured phase / deliveries."
    echo "Ratios are xmppd/peer (for CPU, KiB and latency lower is better)."
    if ls "$WORK"/results/xmppd-*.pprof >/dev/null 2>&1; then
      echo
      echo "xmppd CPU profiles of each measured phase (\`go tool pprof xmppd <file>\`, saved beside the reports in $WORK/results): $(cd "$WORK/results" && ls xmppd-*.pprof | sed 's/.*/`&`/' | paste -sd, - | sed 's/,/, /g')."
    fi
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
