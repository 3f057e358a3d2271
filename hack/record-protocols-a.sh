#!/usr/bin/env bash
# Records the Redis, Kafka, AMQP and PostgreSQL testdata captures from real
# servers and clients, inside a private network namespace so nothing else
# is on the wire.
#
#   hack/record-protocols-a.sh             # all four
#   hack/record-protocols-a.sh redis kafka # some of them
#
# Servers: redis-server, franz-go's kfake broker, rabbitmq-server,
# PostgreSQL 15 (Debian). Clients: redis-cli (files, RESP3, pub/sub,
# --pipe) and redis-benchmark; franz-go's kgo; amqp091-go and amqp-tools;
# psql and pgbench (simple, extended and prepared). What the clients and
# servers logged is merged into testdata/<name>.expected.json. Counts are
# deterministic run to run; bytes and timings are not.
# Needs root (network namespaces, tcpdump). Installs its tools with apt-get.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/lib/netns.sh
source "$ROOT/hack/lib/netns.sh"

TESTDATA=$ROOT/testdata
HOST=127.0.0.1
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
PGPASS=shark-s3cret # the app role's password: the captures must never show it

usage() {
	echo "usage: $0 [redis] [kafka] [amqp] [postgres]" >&2
	exit 2
}

gen() { in_ns "$WORK/protogen-a" "$@"; }

# record NAME FILTER CLIENT_FN: captures what CLIENT_FN does into
# testdata/NAME.pcap and merges the logs it writes into
# testdata/NAME.expected.json.
record() {
	local name=$1 filter=$2 clients=$3
	local raw=$WORK/$name.pcap logs=$WORK/logs-$name
	mkdir -p "$logs"
	capture_start "$raw" "$filter"
	"$clients" "$logs"
	capture_stop
	cp "$raw" "$TESTDATA/$name.pcap"
	gen merge -o "$TESTDATA/$name.expected.json" "$logs"/*.json
	echo "recorded $name.pcap ($(stat -c %s "$TESTDATA/$name.pcap") bytes)"
}

# wait_port HOST:PORT SECONDS: like wait_tcp, for slow starters.
wait_port() {
	local host=${1%:*} port=${1##*:} i
	for ((i = 0; i < $2 * 10; i++)); do
		in_ns bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null && return 0
		sleep 0.1
	done
	die "nothing listens on $1 after $2s; logs in $WORK"
}

# --- Redis -----------------------------------------------------------------

start_redis() {
	start_bg redis redis-server --bind "$HOST" --port 6379 --save "" --appendonly no \
		--unixsocket "$WORK/redis.sock" --unixsocketperm 700 --dir "$WORK"
	wait_port "$HOST:6379" 10
}

# rsock runs redis-cli over the unix socket, which the capture does not see.
rsock() { in_ns redis-cli -s "$WORK/redis.sock" "$@"; }
rcli() { in_ns redis-cli -h "$HOST" -p 6379 "$@"; }

clients_redis() {
	local logs=$1 line i
	rsock CONFIG RESETSTAT >/dev/null
	rsock INFO commandstats >"$WORK/redis-before.txt"
	# One command per redis-cli run, each on its own connection: fed from
	# a file instead, redis-cli first fetches COMMAND DOCS, 200 KB. (The
	# script calls no command: it would count in commandstats too.)
	while read -r line; do
		eval "rcli $line" >/dev/null
	done <<-'EOF'
		SET user:1 alice
		GET user:1
		GET user:missing
		INCRBY visits 10
		LPUSH queue a b c
		LRANGE queue 0 -1
		LPUSH user:1 x
		HSET item:7 name book price 12
		HGETALL item:7
		EXPIRE user:1 300
		CONFIG GET maxmemory
		DEL queue item:7
		SET "spaced key" "two words"
		EVAL "return KEYS[1]" 1 visits
		GETRANGE visits 0 abc
	EOF
	# RESP3 (HELLO 3 first): maps, sets, doubles, nulls, booleans.
	while read -r line; do
		eval "rcli -3 $line" >/dev/null
	done <<-'EOF'
		HGETALL item:8
		SADD tags red green
		SMEMBERS tags
		ZADD scores 1.5 ann
		ZSCORE scores ann
		GET nothing-here
	EOF
	# Inline commands and a transaction on one connection, written at once
	# (--pipe appends an ECHO to find the end of the replies).
	printf 'PING\r\nMULTI\r\nINCR visits\r\nSET flag on\r\nEXEC\r\nCLIENT SETNAME shark-pipe\r\nTTL user:1\r\n' |
		rcli --pipe >"$WORK/inline.out"
	grep -q "errors: 0, replies: 7" "$WORK/inline.out" || die "redis-cli --pipe: $(cat "$WORK/inline.out")"
	# Pub/sub: a subscriber, then messages to it.
	in_ns timeout 5 redis-cli -h "$HOST" -p 6379 SUBSCRIBE news sport >"$WORK/sub.out" &
	local sub=$!
	for ((i = 0; i < 50; i++)); do
		[[ $(rcli PUBSUB NUMSUB sport | tail -1) == 1 ]] && break
		sleep 0.1
	done
	for i in 1 2 3 4 5; do
		rcli PUBLISH news "headline $i" >/dev/null
	done
	rcli PUBLISH sport "score 1" >/dev/null
	sleep 0.5
	kill "$sub" 2>/dev/null || true
	wait "$sub" 2>/dev/null || true
	# 500 commands written at once.
	for ((i = 0; i < 500; i++)); do
		printf '*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n' "${#i}" "$i"
	done >"$WORK/redis-pipe.txt"
	rcli --pipe <"$WORK/redis-pipe.txt" >"$WORK/pipe.out"
	grep -q "errors: 0, replies: 500" "$WORK/pipe.out" || die "redis-cli --pipe: $(cat "$WORK/pipe.out")"
	# Pipelined load from two connections.
	in_ns redis-benchmark -h "$HOST" -p 6379 -n 100 -c 2 -P 10 -t set,get,incr,lpush -q >/dev/null
	rsock INFO commandstats >"$WORK/redis-after.txt"
	gen redis-stats -before "$WORK/redis-before.txt" -after "$WORK/redis-after.txt" -log "$logs/server.json"
	local msgs
	msgs=$(grep -c '^message$' "$WORK/sub.out" || true)
	[[ $msgs -eq 6 ]] || die "subscriber got $msgs messages, want 6: $(cat "$WORK/sub.out")"
	echo "{\"redis\": {\"pushes\": {\"message\": $msgs}}}" >"$logs/subscriber.json"
}

# --- Kafka -----------------------------------------------------------------

clients_kafka() {
	gen kafka-client -brokers "$HOST:9092" -n 8 -log "$1/kgo.json"
}

# --- AMQP ------------------------------------------------------------------

start_rabbitmq() {
	local dir=$WORK/rabbitmq
	mkdir -p "$dir"
	chown rabbitmq:rabbitmq "$dir"
	start_bg rabbitmq env HOME="$dir" RABBITMQ_NODENAME=rabbit@localhost RABBITMQ_MNESIA_BASE="$dir/mnesia" \
		RABBITMQ_LOG_BASE="$dir/log" RABBITMQ_NODE_IP_ADDRESS="$HOST" RABBITMQ_NODE_PORT=5672 \
		RABBITMQ_PID_FILE="$dir/pid" rabbitmq-server
	wait_port "$HOST:5672" 90
}

# tools_log NAME METHOD...: one amqp-tools run's methods; each opens and
# closes its own connection and channel.
tools_log() {
	local out=$1 m
	shift
	{
		printf '{"amqp": {"methods": {'
		printf '"connection.start": 1, "connection.tune": 1, "connection.open": 1, "channel.open": 1'
		printf ', "channel.close": 1, "connection.close": 1'
		for m in "$@"; do printf ', "%s": 1' "$m"; done
		printf '}}}\n'
	} >"$out"
}

clients_amqp() {
	local logs=$1 url="amqp://guest:guest@$HOST:5672" i
	gen amqp-client -url "$url/" -n 10 -log "$logs/go.json"
	in_ns amqp-declare-queue --url="$url" -q jobs >/dev/null
	tools_log "$logs/declare.json" queue.declare
	for i in 1 2 3; do
		in_ns amqp-publish --url="$url" -r jobs -C text/plain -b "job $i"
		tools_log "$logs/publish-$i.json" basic.publish
	done
	for i in 1 2; do
		in_ns amqp-get --url="$url" -q jobs >/dev/null
		tools_log "$logs/get-$i.json" basic.get
	done
}

# --- PostgreSQL --------------------------------------------------------------

# pgsock runs a client as postgres over the unix socket (not captured).
pgsock() { in_ns runuser -u postgres -- "$@" -h "$WORK/pg"; }

start_postgres() {
	[[ -x $PGBIN/initdb ]] || die "no PostgreSQL server binaries (apt-get install postgresql)"
	local dir=$WORK/pg
	mkdir -p "$dir"
	chown postgres:postgres "$dir"
	echo "$PGPASS" >"$dir/pw"
	chown postgres "$dir/pw"
	runuser -u postgres -- "$PGBIN/initdb" -D "$dir/data" -U postgres --auth-local=trust \
		--auth-host=scram-sha-256 --pwfile="$dir/pw" >"$WORK/initdb.log"
	start_bg postgres runuser -u postgres -- "$PGBIN/postgres" -D "$dir/data" \
		-c listen_addresses="$HOST" -c port=5432 -c unix_socket_directories="$dir" \
		-c fsync=off -c log_statement=all -c "log_line_prefix=%e " -c logging_collector=off
	wait_port "$HOST:5432" 30
	pgsock psql -X -q -U postgres -c "CREATE ROLE app LOGIN PASSWORD '$PGPASS'" -c "CREATE DATABASE shop OWNER app"
	pgsock pgbench -q -i -s 1 -U app shop 2>"$WORK/pgbench-init.log"
}

clients_postgres() {
	local logs=$1 mode n
	local log_start
	log_start=$(stat -c %s "$WORK/postgres.log")
	export PGPASSWORD=$PGPASS
	# psql sends each statement of a file as one simple Query; -c sends
	# its string as one Query of several statements.
	cat >"$WORK/shop.sql" <<-'EOF'
		CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL, qty int, placed timestamptz DEFAULT now());
		INSERT INTO orders (item, qty) VALUES ('book', 1), ('pen', 3), ('ink', 2);
		SELECT id, item, qty FROM orders WHERE qty > 1 ORDER BY id;
		UPDATE orders SET qty = qty + 1 WHERE item = 'pen';
		SELECT * FROM missing_table;
		SELECT 1 / 0;
		SELEC 42;
		DELETE FROM orders WHERE item = 'ink';
		COPY orders (item, qty) FROM STDIN;
		lamp	1
		desk	2
		\.
		SELECT count(*) FROM orders;
		DROP TABLE orders;
	EOF
	in_ns psql -X -q -h "$HOST" -U app -d shop -f "$WORK/shop.sql" >/dev/null 2>"$WORK/psql.err" || true
	in_ns psql -X -q -h "$HOST" -U app -d shop -c "BEGIN; SELECT 'semi;colon'; COMMIT" >/dev/null
	for mode in simple extended prepared; do
		in_ns pgbench -n -h "$HOST" -U app -c 2 -t 10 -M "$mode" shop >"$WORK/pgbench-$mode.out" 2>&1
		n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\)\/.*/\1/p' "$WORK/pgbench-$mode.out")
		[[ -n $n ]] || die "pgbench -M $mode: $(cat "$WORK/pgbench-$mode.out")"
		echo "{\"postgres\": {\"pgbench_transactions\": {\"$mode\": $n}}}" >"$logs/pgbench-$mode.json"
	done
	unset PGPASSWORD
	sleep 0.5 # let the server write its last log lines
	tail -c +"$((log_start + 1))" "$WORK/postgres.log" >"$WORK/postgres-captured.log"
	gen pg-log -log "$WORK/postgres-captured.log" -out "$logs/server.json"
}

main() {
	local protos=("$@") p
	((${#protos[@]} > 0)) || protos=(redis kafka amqp postgres)
	for p in "${protos[@]}"; do
		case $p in redis | kafka | amqp | postgres) ;; *) usage ;; esac
	done
	require_root
	ensure_tools tcpdump:tcpdump ip:iproute2 ethtool:ethtool redis-server:redis-server \
		redis-benchmark:redis-tools rabbitmq-server:rabbitmq-server amqp-publish:amqp-tools \
		psql:postgresql-client pgbench:postgresql-contrib
	[[ -n $PGBIN ]] || ensure_tools /usr/lib/postgresql/15/bin/initdb:postgresql
	PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
	setup_work
	chmod 755 "$WORK"
	(cd "$ROOT" && go build -o "$WORK/protogen-a" ./hack/protogen-a)
	netns_create "shark-reca-$$"
	mkdir -p "$TESTDATA"
	for p in "${protos[@]}"; do
		case $p in
		redis)
			start_redis
			record redis "tcp port 6379" clients_redis
			;;
		kafka)
			start_bg kafka "$WORK/protogen-a" kafka-broker -addr "$HOST:9092" -duration 30m
			wait_port "$HOST:9092" 10
			record kafka "tcp port 9092" clients_kafka
			;;
		amqp)
			start_rabbitmq
			record amqp "tcp port 5672" clients_amqp
			;;
		postgres)
			start_postgres
			record postgres "tcp port 5432" clients_postgres
			;;
		esac
	done
}

main "$@"
