#!/usr/bin/env bash
# Records the MySQL, GraphQL, WebSocket and TLS testdata captures from real
# clients and servers, inside a private network namespace so nothing else
# is on the wire:
#
#   testdata/mysql.pcap      MariaDB server, the mariadb CLI and go-sql-driver/mysql
#   testdata/graphql.pcap    a graphql-go server, curl (HTTP/1.1 and h2c)
#   testdata/websocket.pcap  gorilla/websocket client and server (plain, permessage-deflate)
#   testdata/tls.pcap        curl against nginx (TLS 1.2/1.3, h2/http1.1) and openssl s_server
#
# Each client logs what it did; the logs are summed into
# testdata/<name>.expected.json (hack/protogen-b merge). Counts are the
# same on every run; bytes are not. Needs root (namespaces, tcpdump);
# installs its tools with apt-get.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/lib/netns.sh
source "$ROOT/hack/lib/netns.sh"

TESTDATA=$ROOT/testdata
MYSQL_PORT=3306
GRAPHQL=127.0.0.1:4000
WS=127.0.0.1:8765
TLS_PORT=443     # nginx: TLS 1.2 and 1.3, h2 and http/1.1
STRICT_PORT=4433 # openssl s_server: TLS 1.3 only

pg() { in_ns "$WORK/protogen-b" "$@"; }

# record NAME FILTER CLIENT_FN: captures what CLIENT_FN does into
# testdata/NAME and sums the clients' logs into the expected counts.
record() {
	local name=$1 filter=$2 clients=$3
	local raw=$WORK/$name logs=$WORK/logs-$name
	mkdir -p "$logs"
	capture_start "$raw" "$filter"
	"$clients" "$logs"
	capture_stop
	cp "$raw" "$TESTDATA/$name"
	pg merge -o "$TESTDATA/${name%%.*}.expected.json" "$logs"/*.json
	echo "recorded $name ($(stat -c %s "$TESTDATA/$name") bytes)"
}

# --- MySQL -------------------------------------------------------------

start_mariadb() {
	local dir=$WORK/mariadb
	mkdir -p "$dir"
	mariadb-install-db --no-defaults --user=root --datadir="$dir/data" \
		--auth-root-authentication-method=normal --skip-test-db >"$WORK/mariadb-install.log" 2>&1 ||
		die "mariadb-install-db failed: $(tail -5 "$WORK/mariadb-install.log")"
	start_bg mariadb mariadbd --no-defaults --user=root --datadir="$dir/data" \
		--socket="$dir/sock" --pid-file="$dir/pid" --bind-address=127.0.0.1 --port=$MYSQL_PORT \
		--skip-log-bin --skip-name-resolve --innodb-buffer-pool-size=16M
	wait_tcp 127.0.0.1:$MYSQL_PORT
	# The schema is set up over the Unix socket: not captured.
	in_ns mariadb --no-defaults -S "$dir/sock" -uroot <<-'SQL'
		CREATE DATABASE shop;
		CREATE USER 'shark'@'%' IDENTIFIED BY 'sharkpw';
		GRANT ALL ON *.* TO 'shark'@'%' WITH GRANT OPTION;
		USE shop;
		CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) NOT NULL,
			price DECIMAL(10,2) NOT NULL);
		INSERT INTO items (name, price) VALUES ('widget', 2.50), ('sprocket', 12.00), ('flange', 7.25);
		DELIMITER //
		CREATE PROCEDURE two_results() BEGIN SELECT name FROM items WHERE id = 1; SELECT 1, 2; END //
		DELIMITER ;
	SQL
}

# The CLI session, one statement per line (see protogen-b mariadb-log).
MARIADB_SESSION=$(
	cat <<-'SQL'
		use shop
		SELECT id, name, price FROM items ORDER BY id;
		INSERT INTO items (name, price) VALUES ('cog', 0.50), ('nut', 0.10);
		UPDATE items SET price = price * 2 WHERE price < 1;
		SELECT COUNT(*) AS n FROM items;
		SELECT * FROM no_such_table;
		SELEKT 1;
		DELETE FROM items WHERE name = 'nut';
		SHOW TABLES;
		CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY 's3cret-password';
		SELECT seq FROM seq_1_to_100;
		/* a comment first */ SELECT 1 + 1 AS two;
		CALL two_results();
	SQL
)

clients_mysql() {
	echo "$MARIADB_SESSION" >"$WORK/session.sql"
	in_ns mariadb --no-defaults -h 127.0.0.1 -P $MYSQL_PORT -ushark -psharkpw --batch -vvv --force \
		<"$WORK/session.sql" >"$WORK/cli.out" 2>"$WORK/cli.err" || true
	pg mariadb-log -sql "$WORK/session.sql" -stdout "$WORK/cli.out" -stderr "$WORK/cli.err" -log "$1/cli.json"
	pg mysql-client -dsn "shark:sharkpw@tcp(127.0.0.1:$MYSQL_PORT)/shop" -log "$1/go.json"
}

# --- GraphQL, WebSocket ------------------------------------------------

clients_graphql() {
	pg graphql-client -url "http://$GRAPHQL/graphql" -log "$1/curl.json"
}

clients_websocket() {
	pg ws-client -url "ws://$WS/chat" -log "$1/plain.json"
	pg ws-client -url "ws://$WS/chat" -compress -log "$1/deflate.json"
}

# --- TLS ---------------------------------------------------------------

start_tls_servers() {
	local dir=$WORK/tls
	mkdir -p "$dir/tmp"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=shark.test \
		-addext "subjectAltName=DNS:shark.test,DNS:*.shark.test" \
		-keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
	cat >"$dir/nginx.conf" <<-EOF
		daemon off;
		worker_processes 1;
		pid $dir/nginx.pid;
		error_log $dir/error.log;
		events {}
		http {
			access_log off;
			client_body_temp_path $dir/tmp/body;
			proxy_temp_path $dir/tmp/proxy;
			fastcgi_temp_path $dir/tmp/fastcgi;
			uwsgi_temp_path $dir/tmp/uwsgi;
			scgi_temp_path $dir/tmp/scgi;
			server {
				listen 127.0.0.1:$TLS_PORT ssl http2;
				ssl_certificate $dir/cert.pem;
				ssl_certificate_key $dir/key.pem;
				ssl_protocols TLSv1.2 TLSv1.3;
				location / { return 200 "ok\n"; }
			}
		}
	EOF
	start_bg nginx nginx -p "$dir" -c "$dir/nginx.conf"
	start_bg s_server openssl s_server -accept 127.0.0.1:$STRICT_PORT -cert "$dir/cert.pem" \
		-key "$dir/key.pem" -tls1_3 -www -quiet
	wait_tcp 127.0.0.1:$TLS_PORT
	wait_tcp 127.0.0.1:$STRICT_PORT
}

clients_tls() {
	pg tls-client -addr 127.0.0.1 -port $TLS_PORT -strict-port $STRICT_PORT -log "$1/curl.json"
}

main() {
	[[ $# -eq 0 ]] || { echo "usage: $0" >&2; exit 2; }
	require_root
	ensure_tools tcpdump:tcpdump curl:curl ip:iproute2 ethtool:ethtool openssl:openssl \
		mariadbd:mariadb-server mariadb:mariadb-client nginx:nginx-light
	setup_work
	(cd "$ROOT" && go build -o "$WORK/protogen-b" ./hack/protogen-b)
	netns_create "shark-recb-$$"
	mkdir -p "$TESTDATA"
	start_mariadb
	start_bg graphql-server "$WORK/protogen-b" graphql-server -addr "$GRAPHQL"
	start_bg ws-server "$WORK/protogen-b" ws-server -addr "$WS"
	start_tls_servers
	wait_tcp "$GRAPHQL"
	wait_tcp "$WS"
	# wait_tcp's probes connected to the servers before any capture.
	record mysql.pcap "tcp port $MYSQL_PORT" clients_mysql
	record graphql.pcap "tcp port ${GRAPHQL##*:}" clients_graphql
	record websocket.pcap "tcp port ${WS##*:}" clients_websocket
	record tls.pcap "tcp port $TLS_PORT or tcp port $STRICT_PORT" clients_tls
}

main "$@"
