# Sourced by scripts/bench.sh and scripts/bench-tsung.sh: the three servers'
# start and stop, the shared certificate, the binaries and account
# registration, so that both scripts run the servers exactly alike.
#
# The caller sets ROOT (the checkout), WORK (a scratch directory), SERVERS
# (the names it will start) and may override the ports below; it calls
# bench_setup once, then start_<name> (sets SERVER_PID, SERVER_PORT) and
# stop_server <name> per server. Every process started here is stopped on
# exit (trap), by PID.

XMPPD_PORT=${XMPPD_PORT:-17222}
XMPPD_DEBUG=${XMPPD_DEBUG-127.0.0.1:17280}   # pprof; set empty to disable
PROSODY_PORT=${PROSODY_PORT:-16222}
EJABBERD_PORT=${EJABBERD_PORT:-26222}
EJABBERD_DIST=${EJABBERD_DIST:-26299}
ITER=${ITER:-4096}
PASSWORD=${PASSWORD:-benchpw123}   # >= 8 characters: xmppd's default minimum for in-band registration

mkdir -p "$WORK"/{bin,certs,results}
chmod 755 "$WORK"
LOG=${LOG:-$WORK/bench.log}
log() { echo "[${LOG_TAG:-bench} $(date +%H:%M:%S)] $*" | tee -a "$LOG" >&2; }

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

# bench_setup [extra Debian packages]: installs what is missing, raises the
# open-files limit, builds xmppload and xmppd, makes the certificate.
bench_setup() {
  local need_pkgs=() p
  if [[ "$SERVERS" =~ prosody ]]; then command -v prosody >/dev/null || need_pkgs+=(prosody); fi
  if [[ "$SERVERS" =~ ejabberd ]]; then command -v ejabberdctl >/dev/null || need_pkgs+=(ejabberd); fi
  for p in "$@"; do dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need_pkgs+=("$p"); done
  if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "installing ${need_pkgs[*]} from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${need_pkgs[@]}" >>"$LOG" 2>&1
  fi

  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

  log "building xmppload and xmppd into $WORK/bin"
  (cd "$ROOT" && go build -o "$WORK/bin/xmppload" ./cmd/xmppload)
  XMPPD_BUILD_OK=1
  (cd "$ROOT" && go build -o "$WORK/bin/xmppd" ./cmd/xmppd) >>"$LOG" 2>&1 || { XMPPD_BUILD_OK=0; log "xmppd does not build (see $LOG)"; }
  LOAD="$WORK/bin/xmppload"

  # One certificate shared by all servers.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost" -days 30 \
    -keyout "$WORK/certs/localhost.key" -out "$WORK/certs/localhost.crt" >>"$LOG" 2>&1
  chmod 644 "$WORK/certs/localhost.key"
}

subst() { # template out key=value...
  local tpl=$1 out=$2; shift 2
  local args=() kv
  for kv in "$@"; do args+=(-e "s#@${kv%%=*}@#${kv#*=}#g"); done
  sed "${args[@]}" "$tpl" > "$out"
}

# ---- servers: start_<name> sets SERVER_PID, SERVER_PORT ----------------------
# XMPPD_PPROF is the CPU profile URL of the running xmppd (empty: no debug listener).
start_xmppd() {
  [ "$XMPPD_BUILD_OK" = 1 ] || return 1
  local d="$WORK/xmppd"; mkdir -p "$d/data"
  port_free "$XMPPD_PORT" || { log "port $XMPPD_PORT busy"; return 1; }
  local dbg=$XMPPD_DEBUG
  if [ -n "$dbg" ] && ! port_free "${dbg##*:}"; then log "debug port ${dbg##*:} busy: pprof disabled"; dbg=""; fi
  XMPPD_PPROF=""; [ -n "$dbg" ] && XMPPD_PPROF="http://$dbg/debug/pprof/profile"
  subst "$ROOT/scripts/bench/xmppd.toml" "$d/config.toml" DIR="$d" PORT="$XMPPD_PORT" ITER="$ITER" \
    CERTS="$WORK/certs" DEBUG="$dbg" ARCHIVE="${BENCH_ARCHIVE:-false}"
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

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# server_quiet pid [max-seconds]: waits until the process used under 10 % of a CPU over a second, at most
# max-seconds (120). A phase that ends with work still queued in the server (a saturated run's messages in
# flight, which it then stores offline for the clients that left) would otherwise charge that work to the
# next phase: seen as 46 % of xmppd's CPU in a presence run after moderate-wide.
server_quiet() {
  local pid=$1 max=${2:-120} hz a b i
  hz=$(getconf CLK_TCK)
  for (( i = 0; i < max; i++ )); do
    a=$(cpu_ticks "$pid"); sleep 1; b=$(cpu_ticks "$pid")
    if (( (b - a) * 10 < hz )); then
      [ "$i" -eq 0 ] || log "server $pid was busy for ${i}s after the previous phase"
      return 0
    fi
  done
  log "server $pid still busy after ${max}s"
}

# xl_run out args...: one xmppload run, its report in $WORK/results/<out>.json and .txt.
xl_run() {
  local out=$1; shift
  "$LOAD" "$@" -json "$WORK/results/$out.json" > "$WORK/results/$out.txt" 2>&1 || log "$out: xmppload exited $? (see $WORK/results/$out.txt)"
  sed 's/^/    /' "$WORK/results/$out.txt" >&2
}

# register_accounts out addr count args...: creates <prefix>1..<prefix><count> by XEP-0077 in-band registration
# (existing ones are reused); args carry -domain, -tls, -user-prefix, -password and the like.
register_accounts() {
  local out=$1 addr=$2 n=$3; shift 3
  xl_run "$out" -addr "$addr" "$@" -profile idle -register -clients "$n" -duration 1s -settle 100ms
}
