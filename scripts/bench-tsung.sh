#!/usr/bin/env bash
# Tsung (Debian's tsung 1.7) against xmppd, Prosody and ejabberd, one after the other, on loopback: the
# independent cross-check of xmppload's figures asked for by issue 17.
#
#   scripts/bench-tsung.sh [--servers "xmppd prosody ejabberd"] [--no-xmppload]
#
# Scenario (scripts/bench/tsung.xml): TSUNG_USERS users (default 200) log in with STARTTLS + SASL PLAIN, TSUNG_ARRIVAL
# a second (default 50), and once all are online each sends one stamped chat message a second to a random online
# user for TSUNG_SECS seconds (default 30): TSUNG_USERS chats/s. Tsung's full traffic dump (dumptraffic="true": what it sent and received,
# after TLS) gives the chats sent and delivered; Tsung's own xmpp_msg_latency statistic gives its latency (it
# records one sample per packet read, so it can undercount deliveries, which is why the dump is what counts).
# Server CPU: utime+stime of the server process from /proc, sampled every 0.2 s, between the first chat sent and
# the last delivery. Then the same scenario with xmppload (-profile chat -rate 1 -mech PLAIN, pairs instead of
# random targets) on the same accounts, as the cross-check, once as bench.sh paces it (every client sends on the
# same tick: one burst a second) and once with -stagger (the senders spread over the second, as Tsung's are). The servers are those of scripts/bench.sh, started
# and stopped by scripts/bench/servers.sh, with the same configs (all offer PLAIN over TLS).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERVERS="xmppd prosody ejabberd"
XMPPLOAD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --servers) SERVERS="$2"; shift ;;
    --no-xmppload) XMPPLOAD=0 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bench-tsung.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
TSUNG_USERS=${TSUNG_USERS:-200}
TSUNG_SECS=${TSUNG_SECS:-30}
TSUNG_ARRIVAL=${TSUNG_ARRIVAL:-50}   # users started per second
PREFIX=tsung

WORK=${BENCH_DIR:-$(mktemp -d /tmp/xmppd-tsung.XXXXXX)}
LOG_TAG=tsung
# shellcheck source=scripts/bench/servers.sh
. "$ROOT/scripts/bench/servers.sh"
EPMD_BEFORE=$(pgrep -x epmd || true)
bench_setup tsung

# Tsung's controller is a distributed Erlang node (-sname): it starts epmd when none runs. Stop that one on exit,
# by PID, when this script started it.
stop_epmd() {
  local pid
  [ -z "$EPMD_BEFORE" ] || return 0
  for pid in $(pgrep -x epmd || true); do kill -TERM "$pid" 2>/dev/null || true; done
}
trap 'stop_epmd; cleanup' EXIT

HZ=$(getconf CLK_TCK)

# sample_cpu pid file: "epoch-seconds cpu-ticks" every 0.2 s until killed.
sample_cpu() {
  while kill -0 "$1" 2>/dev/null; do echo "$(date +%s.%N) $(cpu_ticks "$1")"; sleep 0.2; done > "$2"
}

XCOMMON=(-domain localhost -tls starttls -user-prefix "$PREFIX" -password "$PASSWORD" -password-suffix-index -q -login-concurrency 50)

run_tsung() { # name
  local n=$1 d="$WORK/tsung/$1" addr="127.0.0.1:$SERVER_PORT"
  mkdir -p "$d"
  register_accounts "$n-register" "$addr" "$TSUNG_USERS" "${XCOMMON[@]}" -mech PLAIN
  subst "$ROOT/scripts/bench/tsung.xml" "$d/tsung.xml" PORT="$SERVER_PORT" USERS="$TSUNG_USERS" \
    ARRIVAL="$TSUNG_ARRIVAL" CHATS="$TSUNG_SECS" PASSWORD="$PASSWORD" WAIT=$(( TSUNG_USERS / TSUNG_ARRIVAL + 3 )) \
    LINGER=$(( TSUNG_USERS / TSUNG_ARRIVAL + 5 ))
  log "$n: tsung, $TSUNG_USERS users, $TSUNG_USERS chats/s for ${TSUNG_SECS}s (load $(cut -d' ' -f1-3 /proc/loadavg))"
  sample_cpu "$SERVER_PID" "$d/cpu.txt" & local sampler=$!
  local prof=""
  if [ "$n" = xmppd ] && [ -n "${XMPPD_PPROF-}" ]; then
    # xmppd's CPU profile of the steady part of the chats: from when the last user's chats begin (the wait after
    # its login) to just before the first user's end, saved as results/xmppd-tsung.pprof.
    local ramp=$(( TSUNG_USERS / TSUNG_ARRIVAL )) secs
    secs=$(( TSUNG_SECS - ramp - 1 )); [ "$secs" -ge 1 ] || secs=1
    (sleep $(( ramp + ramp + 3 )); curl -sf -o "$WORK/results/xmppd-tsung.pprof" "$XMPPD_PPROF?seconds=$secs" \
      || log "xmppd: the CPU profile failed") & prof=$!
  fi
  (cd "$d" && tsung -f "$d/tsung.xml" -l "$d/log" start > "$d/tsung.out" 2>&1) || log "$n: tsung exited $? (see $d/tsung.out)"
  kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
  [ -z "$prof" ] || wait "$prof" || true
  local dump; dump=$(find "$d/log" -name tsung.dump | head -1)
  local tlog; tlog=$(find "$d/log" -name tsung.log | head -1)
  [ -n "$dump" ] || { log "$n: no tsung.dump (see $d/tsung.out)"; return 1; }
  # Chats sent: Send lines carrying a chat message; delivered: the stamps (@@@node,time@@@) in what was received.
  # First chat sent and last delivery bound the CPU window.
  awk -v hz="$HZ" -v cpu="$d/cpu.txt" '
    /^Send:/ && /type=.chat.><body>/ { sent++; split($0, f, ":"); if (first == "") first = f[2] }
    /^Recv:/ { n = gsub(/@@@[0-9]+,[0-9;]+@@@/, "&"); if (n > 0) { recv += n; split($0, f, ":"); last = f[2] } }
    END {
      while ((getline l < cpu) > 0) { split(l, s, " "); if (s[1] <= first) c0 = s[2]; if (s[1] >= last && c1 == "") c1 = s[2]; if (c1 == "") c1x = s[2] }
      if (c1 == "") c1 = c1x
      us = (recv > 0) ? (c1 - c0) / hz * 1e6 / recv : 0
      printf "{\"sent\": %d, \"delivered\": %d, \"window_s\": %.2f, \"server_cpu_s\": %.2f, \"cpu_us_per_chat\": %.1f}\n", sent, recv, last - first, (c1 - c0) / hz, us
    }' "$dump" > "$d/result.json"
  # Tsung's statistics: the last xmpp_msg_latency line (samples, mean ms), connection and error counters.
  if [ -n "$tlog" ]; then
    # stats lines: name, count and mean of the interval, stddev, max, min, then the mean and count of the whole run.
    jq -c --arg lat "$(grep '^stats: xmpp_msg_latency ' "$tlog" | awk '{ n += $3 } END { print n + 0 }')" \
      --arg mean "$(grep '^stats: xmpp_msg_latency ' "$tlog" | awk '{ m = $8 } END { printf "%.2f", m + 0 }')" \
      --arg max "$(grep '^stats: xmpp_msg_latency ' "$tlog" | awk '{ if ($6 > m) m = $6 } END { print m + 0 }')" \
      --arg errs "$(grep -E '^stats: (error_|timeout)' "$tlog" | awk '{ a[$2] += $3 } END { for (k in a) printf "%s=%d ", k, a[k] }')" \
      '. + {tsung_latency_samples: ($lat | tonumber), tsung_latency_mean_ms: ($mean | tonumber), tsung_latency_max_ms: ($max | tonumber), tsung_errors: $errs}' "$d/result.json" > "$d/result.tmp" && mv "$d/result.tmp" "$d/result.json"
  fi
  log "$n: tsung: $(cat "$d/result.json")"
  if [ "$XMPPLOAD" = 1 ]; then
    sleep 2
    log "$n: xmppload, the same scenario (load $(cut -d' ' -f1-3 /proc/loadavg))"
    xl_run "$n-xmppload" -addr "$addr" "${XCOMMON[@]}" -mech PLAIN -profile chat -clients "$TSUNG_USERS" -rate 1 \
      -window 100 -duration "${TSUNG_SECS}s" -settle 1s -server-pid "$SERVER_PID"
    sleep 2
    log "$n: xmppload -stagger, the same scenario with the senders spread over each second as Tsung's are (load $(cut -d' ' -f1-3 /proc/loadavg))"
    xl_run "$n-xmppload-stagger" -addr "$addr" "${XCOMMON[@]}" -mech PLAIN -profile chat -clients "$TSUNG_USERS" -rate 1 \
      -stagger -window 100 -duration "${TSUNG_SECS}s" -settle 1s -server-pid "$SERVER_PID"
  fi
}

RAN=()
for s in $SERVERS; do
  SERVER_PID=""; SERVER_PORT=""
  log "=== $s"
  if "start_$s"; then
    sleep 2
    if run_tsung "$s"; then RAN+=("$s"); fi
    stop_server "$s"
  else
    log "$s: FAILED TO START, skipped"
  fi
done

jr() { jq -r "$2 // empty" "$WORK/tsung/$1/result.json" 2>/dev/null || true; }
jx() { jq -r "$2 // empty" "$WORK/results/$1-xmppload.json" 2>/dev/null || true; }
js() { jq -r "$2 // empty" "$WORK/results/$1-xmppload-stagger.json" 2>/dev/null || true; }
TABLE="$WORK/table-tsung.md"
{
  echo "| server | Tsung chats sent | delivered (Tsung dump) | Tsung latency samples | Tsung latency mean / max ms | server CPU µs/delivered chat (Tsung) | xmppload sent/delivered | server CPU µs/msg (xmppload) | xmppload p99 ms | xmppload -stagger sent/delivered | server CPU µs/msg (-stagger) | -stagger p99 ms | Tsung errors |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  for s in "${RAN[@]}"; do
    echo "| $s | $(jr "$s" .sent) | $(jr "$s" .delivered) | $(jr "$s" .tsung_latency_samples) | $(jr "$s" .tsung_latency_mean_ms) / $(jr "$s" .tsung_latency_max_ms) | $(jr "$s" .cpu_us_per_chat) | $(jx "$s" .messages_sent)/$(jx "$s" .messages_received) | $(jx "$s" .server_stats.cpu_us_per_msg) | $(jx "$s" .latency_ms.p99) | $(js "$s" .messages_sent)/$(js "$s" .messages_received) | $(js "$s" .server_stats.cpu_us_per_msg) | $(js "$s" .latency_ms.p99) | $(jr "$s" .tsung_errors) |"
  done
} > "$TABLE"
echo
echo "Tsung $(dpkg-query -W -f '${Version}' tsung), $TSUNG_USERS users, STARTTLS + PLAIN, $TSUNG_USERS chats/s for ${TSUNG_SECS}s; $(date -u +'%Y-%m-%d %H:%M UTC'), loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
echo
cat "$TABLE"
log "results in $WORK"
