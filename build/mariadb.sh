#!/usr/bin/env bash
# A throwaway MariaDB on 127.0.0.1 for NHKeepAlive's tests, demo and benchmarks.
#
#   build/mariadb.sh start     install mariadb-server if missing, initialise a temporary data folder,
#                              start the server on a free port, create the test user and database,
#                              and print the NHK_TEST_* variables (also written to $STATE/env)
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

log() { printf '[mariadb] %s\n' "$*" >&2; }

ensure_installed() {
  if command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; then return; fi
  log "mariadb-server is not installed; installing it with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq mariadb-server >/dev/null
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
  # --no-defaults: nothing from /etc/mysql leaks in. utf8mb4 so both drivers read every column.
  "$(mariadbd_bin)" --no-defaults --user=root --datadir="$DATA" --port="$port" \
    --bind-address=127.0.0.1 --socket="$SOCK" --pid-file="$PIDF" --log-error="$LOG" \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
    --skip-name-resolve --max-connections=300 --innodb-buffer-pool-size=64M \
    --innodb-log-file-size=16M --skip-log-bin >/dev/null 2>&1 &
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
export NHK_TEST_SERVER_CONTROL="$(readlink -f "$0")"
export NHK_MARIADB_STATE=$STATE
ENV
}

case "${1:-}" in
  start)
    ensure_installed
    shutdown_server
    rm -rf "$STATE"; mkdir -p "$DATA"
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
SQL
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
