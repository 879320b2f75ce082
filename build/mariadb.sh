#!/usr/bin/env bash
# A throwaway MariaDB on 127.0.0.1 for NHKeepAlive's tests, demo and benchmarks.
#
#   build/mariadb.sh start     install mariadb-server (and openssl) if missing, initialise a temporary
#                              data folder, make a throwaway CA and server certificate, start the
#                              server with TLS on a free port, create the test users (nhk, and nhk_tls
#                              which must connect over TLS) and database, and print the NHK_TEST_*
#                              variables (also written to $STATE/env)
#   build/mariadb.sh stop      stop it and delete its data folder
#   build/mariadb.sh restart   stop and start the same instance (same port, same data)
#   build/mariadb.sh kill9     SIGKILL the server (a crash), without restarting it
#   build/mariadb.sh up        start an instance that was stopped by 'down' or 'kill9'
#   build/mariadb.sh down      stop the server but keep its data (for "server is down" tests)
#
# NHK_MARIADB_STATE names the instance's folder (default: /tmp/nhkeepalive-mariadb).
set -euo pipefail
STATE=${NHK_MARIADB_STATE:-/tmp/nhkeepalive-mariadb}
DATA=$STATE/data
SOCK=$STATE/mysqld.sock
PIDF=$STATE/mysqld.pid
LOG=$STATE/mysqld.log
USER_NAME=nhk
USER_PASS=nhk-test-pw
DB_NAME=nhk_test
TLS_USER_NAME=nhk_tls # REQUIRE SSL: for the tests that run over TLS; the same password
TLS=$STATE/tls        # the throwaway CA and the server's certificate and key

log() { printf '[mariadb] %s\n' "$*" >&2; }

ensure_installed() {
  if command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; then return; fi
  log "mariadb-server is not installed; installing it with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq mariadb-server >/dev/null
}

ensure_openssl() {
  command -v openssl >/dev/null 2>&1 && return
  log "openssl is not installed; installing it with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq openssl >/dev/null
}

# A throwaway CA and a server certificate it signed (for 127.0.0.1 and localhost), in $TLS. Nothing
# outside the state folder trusts them; they go away with it.
make_certificates() {
  mkdir -p "$TLS"
  (
    cd "$TLS"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=NHKeepAlive throwaway test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout ca-key.pem -out ca.pem
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server-key.pem -out server.csr
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" > server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 30 \
      -extfile server.ext -out server-cert.pem
    rm -f server.csr server.ext ca.srl
  ) >"$STATE/tls.log" 2>&1 || { cat "$STATE/tls.log" >&2; log "could not make the test certificates"; return 1; }
}

# The server's TLS options, when the instance has certificates (one started by an older script has none).
tls_options() {
  [ -f "$TLS/server-cert.pem" ] || return 0
  printf '%s\n' --ssl-ca="$TLS/ca.pem" --ssl-cert="$TLS/server-cert.pem" --ssl-key="$TLS/server-key.pem"
}

mariadbd_bin() { command -v mariadbd 2>/dev/null || echo /usr/sbin/mariadbd; }

free_port() {
  python3 - <<'PY' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

server_pid() { [ -f "$PIDF" ] && cat "$PIDF" 2>/dev/null || true; }

is_running() {
  local pid; pid=$(server_pid)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

launch() {
  local port=$1
  local tls=()
  mapfile -t tls < <(tls_options)
  # --no-defaults: nothing from /etc/mysql leaks in. utf8mb4 so both drivers read every column. A temp folder of its
  # own: a server that starts deletes every #sql* file in its tmpdir, and another throwaway server (the test legs run
  # side by side) may be using one there at that moment.
  mkdir -p "$STATE/tmp"
  "$(mariadbd_bin)" --no-defaults --user=root --datadir="$DATA" --tmpdir="$STATE/tmp" --port="$port" \
    --bind-address=127.0.0.1 --socket="$SOCK" --pid-file="$PIDF" --log-error="$LOG" \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
    --skip-name-resolve --max-connections=300 --innodb-buffer-pool-size=64M \
    --innodb-log-file-size=16M --skip-log-bin "${tls[@]}" >/dev/null 2>&1 &
  local i
  for i in $(seq 1 300); do
    if mariadb --no-defaults -uroot --socket="$SOCK" -e 'SELECT 1' >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  log "the server did not accept connections within 30 s; its log:"; tail -n 30 "$LOG" >&2 || true
  return 1
}

shutdown_server() {
  local pid; pid=$(server_pid)
  [ -n "$pid" ] || return 0
  mariadb-admin --no-defaults -uroot --socket="$SOCK" shutdown >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || { rm -f "$PIDF"; return 0; }; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$PIDF"
}

write_env() {
  local port=$1
  cat > "$STATE/env" <<ENV
export NHK_TEST_MYSQL_HOST=127.0.0.1
export NHK_TEST_MYSQL_PORT=$port
export NHK_TEST_MYSQL_USER=$USER_NAME
export NHK_TEST_MYSQL_PASSWORD=$USER_PASS
export NHK_TEST_MYSQL_DATABASE=$DB_NAME
export NHK_TEST_MYSQL_ROOT_SOCKET=$SOCK
export NHK_TEST_MYSQL_TLS_USER=$TLS_USER_NAME
export NHK_TEST_MYSQL_TLS_PASSWORD=$USER_PASS
export NHK_TEST_MYSQL_TLS_CA=$TLS/ca.pem
export NHK_TEST_SERVER_CONTROL="$(readlink -f "$0")"
export NHK_MARIADB_STATE=$STATE
ENV
}

case "${1:-}" in
  start)
    ensure_installed
    ensure_openssl
    shutdown_server
    rm -rf "$STATE"; mkdir -p "$DATA"
    make_certificates
    mariadb-install-db --no-defaults --user=root --datadir="$DATA" --auth-root-authentication-method=socket \
      --skip-test-db >"$STATE/install.log" 2>&1 || { cat "$STATE/install.log" >&2; exit 1; }
    port=$(free_port)
    echo "$port" > "$STATE/port"
    launch "$port"
    mariadb --no-defaults -uroot --socket="$SOCK" <<SQL
CREATE DATABASE $DB_NAME;
CREATE USER '$USER_NAME'@'127.0.0.1' IDENTIFIED BY '$USER_PASS';
CREATE USER '$USER_NAME'@'localhost' IDENTIFIED BY '$USER_PASS';
GRANT ALL PRIVILEGES ON *.* TO '$USER_NAME'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$USER_NAME'@'localhost' WITH GRANT OPTION;
CREATE USER '$TLS_USER_NAME'@'127.0.0.1' IDENTIFIED BY '$USER_PASS' REQUIRE SSL;
GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$TLS_USER_NAME'@'127.0.0.1';
SQL
    [ "$(mariadb --no-defaults -uroot --socket="$SOCK" -N -e "SELECT @@have_ssl")" = YES ] \
      || { log "the server did not enable TLS; its log:"; tail -n 20 "$LOG" >&2; exit 1; }
    write_env "$port"
    log "MariaDB $("$(mariadbd_bin)" --version | awk '{print $3}') on 127.0.0.1:$port (data in $DATA)"
    cat "$STATE/env"
    ;;
  stop)
    shutdown_server
    rm -rf "$STATE"
    ;;
  down) shutdown_server ;;
  kill9) pid=$(server_pid); [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
         for i in $(seq 1 100); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
         rm -f "$PIDF" ;;
  up) is_running || launch "$(cat "$STATE/port")" ;;
  restart) shutdown_server; launch "$(cat "$STATE/port")" ;;
  *) echo "usage: $0 start|stop|restart|down|up|kill9" >&2; exit 2 ;;
esac
