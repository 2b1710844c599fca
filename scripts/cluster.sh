#!/usr/bin/env bash
# A three-node xmppd cluster on loopback for a newcomer: etcd (membership), PostgreSQL (shared storage) and
# three nodes, each with its own ports, in ./cluster-data. Runs in the foreground; Ctrl-C stops everything.
#
#   scripts/cluster.sh            # installs etcd-server and postgresql from Debian if missing, then starts
#   go run ./cmd/xmppd cluster status -c cluster-data/node1/config.toml
#
# Node N (1..3) serves localhost: c2s STARTTLS on 127.0.0.1:5N22, direct TLS on 5N23, debug on 5N80, the actor
# remote on 79N6. Accounts are shared: `go run ./cmd/xmppd user add alice@localhost -c cluster-data/node1/config.toml`.
# The nodes share node 1's generated certificate (clients trust cluster-data/node1/data/certs/localhost.crt).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD/cluster-data
mkdir -p "$root"

need=()
command -v etcd >/dev/null || need+=(etcd-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if ((${#need[@]})); then
	echo "installing ${need[*]}" >&2
	sudo=""
	[[ $(id -u) -eq 0 ]] || sudo=sudo
	$sudo apt-get install -y -q "${need[@]}" >/dev/null
fi
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

pids=()
cleanup() {
	echo "stopping" >&2
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# etcd, one member, loopback only.
etcd --name xmppd-dev --data-dir "$root/etcd" \
	--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
	--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
	--initial-cluster xmppd-dev=http://127.0.0.1:2380 >"$root/etcd.log" 2>&1 &
pids+=($!)

# PostgreSQL in its own directory on port 5433 (not to collide with a system server); as user postgres when
# run as root (initdb refuses root).
as=()
[[ $(id -u) -eq 0 ]] && as=(runuser -u postgres --)
mkdir -p "$root/pg"
[[ $(id -u) -eq 0 ]] && chown postgres "$root/pg"
if [[ ! -f $root/pg/data/PG_VERSION ]]; then
	"${as[@]}" "$pgbin/initdb" -D "$root/pg/data" -U xmppd --auth=trust >"$root/pg/initdb.log"
fi
"${as[@]}" "$pgbin/postgres" -D "$root/pg/data" -p 5433 -k "$root/pg" -c listen_addresses=127.0.0.1 >"$root/pg/postgres.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
	"$pgbin/pg_isready" -q -h 127.0.0.1 -p 5433 && break
	sleep 0.2
done
"$pgbin/psql" -q -h 127.0.0.1 -p 5433 -U xmppd -d postgres -tc "SELECT 1 FROM pg_database WHERE datname='xmppd'" | grep -q 1 ||
	"$pgbin/createdb" -h 127.0.0.1 -p 5433 -U xmppd xmppd

go build -o "$root/xmppd" ./cmd/xmppd

node_config() { # N [tls lines]
	local n=$1
	mkdir -p "$root/node$n"
	cat >"$root/node$n/config.toml" <<EOF
data_dir = "$root/node$n/data"

[c2s]
listen = "127.0.0.1:5${n}22"
direct_tls_listen = "127.0.0.1:5${n}23"

[tls]
$2

[storage]
driver = "postgres"
dsn = "host=127.0.0.1 port=5433 user=xmppd dbname=xmppd"

[proxy65]
listen = ""

[http]
listen = ""

[debug]
listen = "127.0.0.1:5${n}80"

[cluster]
enabled = true
bind = "127.0.0.1:79${n}6"
provider = "etcd"
etcd_endpoints = ["127.0.0.1:2379"]
EOF
}

start_node() {
	"$root/xmppd" serve -c "$root/node$1/config.toml" >>"$root/node$1/xmppd.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 150); do
		curl -sf "http://127.0.0.1:5${1}80/healthz" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	echo "node $1 did not start; see $root/node$1/xmppd.log" >&2
	exit 1
}

node_config 1 ""
start_node 1
cert="cert_file = \"$root/node1/data/certs/localhost.crt\"
key_file = \"$root/node1/data/certs/localhost.key\""
node_config 2 "$cert"
node_config 3 "$cert"
start_node 2
start_node 3
"$root/xmppd" cluster status -c "$root/node1/config.toml"
echo "cluster running (logs in $root/node*/xmppd.log); Ctrl-C stops it" >&2
wait -n "${pids[@]}"
