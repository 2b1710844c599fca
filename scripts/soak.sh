#!/usr/bin/env bash
# Soak test (not in CI): churn + chat + abrupt client disconnects against one xmppd for a while, then checks
# that goroutines, open file descriptors and RSS came back to their baseline and that no chat message was lost.
#
#   scripts/soak.sh [seconds]        (default 600)
#
# Margins (after the load stops and a settle period): goroutines <= baseline + 25, open fds <= baseline + 10,
# RSS <= 2 x baseline + 64 MiB (the Go heap grows under load and is returned to the OS lazily; a leak of
# connections, actors or buffers shows as growth well beyond that over 10 minutes). xmppload exits 1 when a
# chat message was lost; that fails the soak.
#
# Every process the script starts is stopped on exit, by PID. Ports: loopback 17522/17523/17580 (override with
# SOAK_PORT, SOAK_TLS_PORT, SOAK_DEBUG).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECS=${1:-600}
PORT=${SOAK_PORT:-17522}
TLS_PORT=${SOAK_TLS_PORT:-17523}
DEBUG=${SOAK_DEBUG:-127.0.0.1:17580}
ROUND=${SOAK_ROUND:-60}
WORK=$(mktemp -d /tmp/xmppd-soak-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "soak: work directory $WORK (log: $WORK/xmppd.log)"
}
trap cleanup EXIT

echo "soak: building into $WORK"
(cd "$ROOT" && go build -o "$WORK/xmppd" ./cmd/xmppd && go build -o "$WORK/xmppload" ./cmd/xmppload)
cat > "$WORK/config.toml" <<TOML
domains = ["localhost"]
data_dir = "$WORK/data"
[c2s]
listen = "127.0.0.1:$PORT"
direct_tls_listen = "127.0.0.1:$TLS_PORT"
[auth]
scram_iterations = 4096
[registration]
allow = true
[debug]
listen = "$DEBUG"
[log]
level = "warn"
format = "json"
TOML
"$WORK/xmppd" serve -c "$WORK/config.toml" >"$WORK/xmppd.log" 2>&1 &
XMPPD=$!
PIDS+=("$XMPPD")
for _ in $(seq 100); do
  curl -fs "http://$DEBUG/metrics" >/dev/null 2>&1 && break
  sleep 0.2
done
CA="$WORK/data/certs/localhost.crt"

sample() { # prints goroutines fds rss
  curl -fs "http://$DEBUG/metrics" | awk '
    /^go_goroutines /{g=$2} /^process_open_fds /{f=$2} /^process_resident_memory_bytes /{r=$2}
    END{printf "%d %d %d\n", g, f, r}'
}
load() { "$WORK/xmppload" -addr "127.0.0.1:$PORT" -cafile "$CA" -q "$@"; }

# Accounts: 1-40 chat, 101-200 churn, 201-260 abruptly killed (registered in-band once, reused after).
load -profile idle -register -clients 40 -first-index 1 -duration 1s -settle 0s -password-suffix-index -password soakpass >/dev/null
load -profile idle -register -clients 100 -first-index 101 -duration 1s -settle 0s -password-suffix-index -password soakpass >/dev/null
load -profile idle -register -clients 60 -first-index 201 -duration 1s -settle 0s -password-suffix-index -password soakpass >/dev/null
sleep 5
read -r G0 F0 R0 < <(sample)
echo "soak: baseline goroutines=$G0 fds=$F0 rss=$((R0 / 1048576))MiB; running ${SECS}s in ${ROUND}s rounds"

lost=0
end=$(( $(date +%s) + SECS ))
round=0
while [ "$(date +%s)" -lt "$end" ]; do
  round=$((round + 1))
  d=$(( end - $(date +%s) )); [ "$d" -gt "$ROUND" ] && d=$ROUND; [ "$d" -lt 5 ] && d=5
  load -profile chat -clients 40 -first-index 1 -rate 5 -duration "${d}s" -settle 1s -drain 10s \
    -password-suffix-index -password soakpass -json "$WORK/chat-$round.json" >"$WORK/chat-$round.txt" 2>&1 &
  CHAT=$!; PIDS+=("$CHAT")
  load -profile churn -clients 100 -first-index 101 -hold 2s -duration "${d}s" -settle 0s \
    -password-suffix-index -password soakpass >"$WORK/churn-$round.txt" 2>&1 &
  CHURN=$!; PIDS+=("$CHURN")
  # Abrupt disconnects: 60 clients log in and are killed (SIGKILL: no </stream:stream>, no TCP FIN from a
  # stream close) at random moments, a few times per round.
  t0=$(date +%s)
  while [ $(( $(date +%s) - t0 )) -lt "$d" ]; do
    # The binary itself, not the load() function: $! must be xmppload's PID, not a subshell's.
    "$WORK/xmppload" -addr "127.0.0.1:$PORT" -cafile "$CA" -q -profile idle -clients 60 -first-index 201 \
      -duration 1h -settle 0s -password-suffix-index -password soakpass >/dev/null 2>&1 &
    ABRUPT=$!; PIDS+=("$ABRUPT")
    sleep $(( 3 + RANDOM % 8 ))
    kill -9 "$ABRUPT" 2>/dev/null || true
    wait "$ABRUPT" 2>/dev/null || true
  done
  wait "$CHURN" || echo "soak: round $round churn exited $?"
  if ! wait "$CHAT"; then
    echo "soak: round $round: chat reported lost messages or failed:"; tail -5 "$WORK/chat-$round.txt"
    lost=1
  fi
  read -r G F R < <(sample)
  echo "soak: round $round done: goroutines=$G fds=$F rss=$((R / 1048576))MiB $(grep -ho 'lost[^,]*' "$WORK/chat-$round.txt" | head -1)"
done

sleep 15 # let closed connections and idle user actors (30 s idle) finish
sleep 20
read -r G1 F1 R1 < <(sample)
echo "soak: after: goroutines=$G1 (baseline $G0) fds=$F1 (baseline $F0) rss=$((R1 / 1048576))MiB (baseline $((R0 / 1048576))MiB)"
fail=$lost
[ "$G1" -le $((G0 + 25)) ] || { echo "soak: FAIL goroutines did not return to baseline"; fail=1; }
[ "$F1" -le $((F0 + 10)) ] || { echo "soak: FAIL open fds did not return to baseline"; fail=1; }
[ "$R1" -le $((2 * R0 + 64 * 1048576)) ] || { echo "soak: FAIL RSS did not return near baseline"; fail=1; }
kill -TERM "$XMPPD"; wait "$XMPPD" && echo "soak: xmppd exited cleanly" || { echo "soak: xmppd exit status $?"; fail=1; }
[ "$fail" = 0 ] && echo "soak: PASS" || echo "soak: FAIL"
exit "$fail"
