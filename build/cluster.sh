#!/usr/bin/env bash
# A throwaway 3-node MariaDB Galera cluster on loopback, with one HAProxy in front, for NHKeepAlive's
# cluster tests, demo and benchmarks.
#
#   build/cluster.sh install        install what the cluster needs (below) if missing, and nothing else
#   build/cluster.sh start          install mariadb-server, galera-4, rsync, haproxy (and socat) if missing,
#                                   bootstrap node 1, join nodes 2 and 3 (rsync state transfer), create the
#                                   test user and database, start HAProxy, print the NHK_CLUSTER_* variables
#                                   (also written to $STATE/env)
#   build/cluster.sh stop           stop every node and HAProxy, delete the state folder
#   build/cluster.sh status         each node's wsrep state, read_only, reject_queries; HAProxy's view
#   build/cluster.sh kill N         SIGKILL node N (a crash)
#   build/cluster.sh stop-node N    shut node N down cleanly
#   build/cluster.sh start-node N   start node N again (recovers its position, rejoins by IST) and wait
#                                   until it is Synced
#   build/cluster.sh reject N       SET GLOBAL wsrep_reject_queries=ALL on node N (error 1047 for clients)
#   build/cluster.sh isolate N      cut node N off the cluster: SET GLOBAL wsrep_provider_options=
#                                   'gmcast.isolate=1' (Galera closes its group connections and refuses
#                                   new ones; no firewall, nothing outside the node is touched); node N
#                                   leaves the primary component (1047 / 1180 for clients)
#   build/cluster.sh readonly N     SET GLOBAL read_only=1 on node N (error 1290 for the test user)
#   build/cluster.sh heal N         lift reject/isolate/readonly on node N and wait until it is Synced
#   build/cluster.sh haproxy-state N          UP, DOWN, ... as HAProxy sees node N now
#   build/cluster.sh wait-haproxy N STATE [S] wait (at most S seconds, default 30) until HAProxy shows
#                                   node N in STATE (UP or DOWN); prints the seconds it took
#
# Layout: node N listens on 127.0.0.N (SQL port, Galera group port, IST port and SST port are the same
# numbers on each address, picked free at start); HAProxy listens on 127.0.0.1 and sends every
# connection to node 1, nodes 2 and 3 being backups, so that all writes go to one node. Its health
# check (an external check, $STATE/haproxy-check.sh) logs in as a user with no privileges and passes only
# when the node is Synced (wsrep_local_state 4, wsrep_ready ON), accepts queries
# (wsrep_reject_queries NONE) and is writable (read_only OFF); a node that fails it twice is taken out
# and its sessions are cut (on-marked-down shutdown-sessions). See docs/cluster.md.
#
# The servers run as the 'mysql' user (rsync's state transfer fails when they run as root).
# Only processes whose pid file is in the state folder and whose command line names it are signalled.
#
# NHK_CLUSTER_STATE names the cluster's folder (default: /tmp/nhkeepalive-cluster).
# NHK_CLUSTER_HAPROXY_TIMEOUT: HAProxy's timeout client and timeout server, in seconds (default 10).
# NHK_CLUSTER_HAPROXY_CHECK=wsrep (default) or mysql: 'mysql' uses plain 'option mysql-check' (logs in
# only, as most Galera setups do) to reproduce what the stock drivers see behind such an HAProxy.
set -euo pipefail
STATE=${NHK_CLUSTER_STATE:-/tmp/nhkeepalive-cluster}
HAPROXY_TIMEOUT=${NHK_CLUSTER_HAPROXY_TIMEOUT:-10}
CHECK_KIND=${NHK_CLUSTER_HAPROXY_CHECK:-wsrep}
NODES=3
USER_NAME=nhk
USER_PASS=nhk-test-pw
DB_NAME=nhk_test
CHECK_USER=nhk_check
CHECK_PASS=nhk-check-pw
PING_USER=nhk_ping # passwordless, no privileges: for NHK_CLUSTER_HAPROXY_CHECK=mysql
CLUSTER_NAME=nhk_cluster

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---- packages ---------------------------------------------------------------------------------------
ensure_installed() {
  local missing=()
  { command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; } || missing+=(mariadb-server)
  galera_lib >/dev/null 2>&1 || missing+=(galera-4)
  command -v rsync >/dev/null 2>&1 || missing+=(rsync)
  { command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; } || missing+=(haproxy)
  command -v socat >/dev/null 2>&1 || missing+=(socat)
  command -v ss >/dev/null 2>&1 || command -v lsof >/dev/null 2>&1 || missing+=(iproute2)
  [ "${#missing[@]}" -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}) and not root: cannot install them"
  log "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  # Another apt-get may hold the lock for a while: wait for it, boundedly.
  apt-get -o DPkg::Lock::Timeout=180 update -qq >"${TMPDIR:-/tmp}/nhk-cluster-apt.log" 2>&1 || true
  apt-get -o DPkg::Lock::Timeout=180 install -y -qq "${missing[@]}" >>"${TMPDIR:-/tmp}/nhk-cluster-apt.log" 2>&1 \
    || { tail -n 20 "${TMPDIR:-/tmp}/nhk-cluster-apt.log" >&2; die "could not install ${missing[*]}"; }
}

galera_lib() {
  local f
  for f in /usr/lib/galera/libgalera_smm.so /usr/lib/libgalera_smm.so; do
    [ -f "$f" ] && { echo "$f"; return 0; }
  done
  f=$(dpkg -L galera-4 2>/dev/null | grep 'libgalera_smm\.so$' | head -1 || true)
  [ -n "$f" ] && [ -f "$f" ] && { echo "$f"; return 0; }
  return 1
}

mariadbd_bin() { command -v mariadbd 2>/dev/null || echo /usr/sbin/mariadbd; }
haproxy_bin() { command -v haproxy 2>/dev/null || echo /usr/sbin/haproxy; }

# ---- layout -----------------------------------------------------------------------------------------
node_dir() { echo "$STATE/node$1"; }
node_host() { echo "127.0.0.$1"; }
node_sock() { echo "$(node_dir "$1")/mysqld.sock"; }
node_cnf() { echo "$(node_dir "$1")/my.cnf"; }
node_log() { echo "$(node_dir "$1")/error.log"; }
node_pidf() { echo "$(node_dir "$1")/server.pid"; } # written by this script (mariadbd's own comes late)

load_ports() {
  [ -f "$STATE/ports" ] || die "no cluster in $STATE (run: $0 start)"
  # shellcheck disable=SC1091
  . "$STATE/ports"
}

check_node_arg() {
  case "${1:-}" in 1|2|3) ;; *) die "node must be 1, 2 or 3" ;; esac
}

port_in_use() { # host port
  timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# Five consecutive ports free on 127.0.0.1-3, below the ephemeral range (a client's local port there
# would make a server's bind fail later), and not used by any socket in any state.
pick_ports() {
  local try base p n busy low top
  low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  top=$((low - 10))
  [ "$top" -gt 12000 ] || top=30000
  for try in $(seq 1 40); do
    base=$((10000 + (RANDOM % ((top - 10000) / 10)) * 10))
    busy=0
    if ss -tanH 2>/dev/null | awk '{print $4; print $5}' | grep -qE ":($base|$((base + 1))|$((base + 2))|$((base + 3))|$((base + 4)))\$"; then
      continue
    fi
    for p in $base $((base + 1)) $((base + 2)) $((base + 3)) $((base + 4)); do
      for n in 1 2 3; do
        if port_in_use "$(node_host "$n")" "$p"; then busy=1; break 2; fi
      done
    done
    if [ "$busy" -eq 0 ]; then
      cat > "$STATE/ports" <<PORTS
SQL_PORT=$base
GCOMM_PORT=$((base + 1))
IST_PORT=$((base + 2))
SST_PORT=$((base + 3))
HAPROXY_PORT=$((base + 4))
PORTS
      return 0
    fi
  done
  die "found no free ports"
}

write_cnf() {
  local n=$1 dir host
  dir=$(node_dir "$n"); host=$(node_host "$n")
  cat > "$(node_cnf "$n")" <<CNF
[mariadbd]
user=mysql
datadir=$dir/data
tmpdir=$dir/tmp
socket=$dir/mysqld.sock
pid-file=$dir/mysqld.pid
log-error=$dir/error.log
port=$SQL_PORT
bind-address=$host
character-set-server=utf8mb4
collation-server=utf8mb4_general_ci
skip-name-resolve
max-connections=300
innodb-buffer-pool-size=64M
innodb-log-file-size=16M
performance_schema=OFF
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2
wsrep_on=ON
wsrep_provider=$(galera_lib)
wsrep_cluster_name=$CLUSTER_NAME
wsrep_cluster_address=gcomm://127.0.0.1:$GCOMM_PORT,127.0.0.2:$GCOMM_PORT,127.0.0.3:$GCOMM_PORT
wsrep_node_name=node$n
wsrep_node_address=$host:$GCOMM_PORT
wsrep_provider_options="gmcast.listen_addr=tcp://$host:$GCOMM_PORT;ist.recv_addr=$host:$IST_PORT;gcache.size=32M"
wsrep_sst_method=rsync
wsrep_sst_receive_address=$host:$SST_PORT
wsrep_slave_threads=1
CNF
}

# ---- processes --------------------------------------------------------------------------------------
# The pid of node N's server if it runs and is ours (its command line names our option file).
node_pid() {
  local pidf pid
  pidf=$(node_pidf "$1")
  [ -f "$pidf" ] || return 0
  pid=$(cat "$pidf" 2>/dev/null || true)
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF "$(node_cnf "$1")" && echo "$pid"
  return 0
}

haproxy_pid() {
  local pid
  [ -f "$STATE/haproxy.pid" ] || return 0
  pid=$(cat "$STATE/haproxy.pid" 2>/dev/null || true)
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF "$STATE/haproxy.cfg" && echo "$pid"
  return 0
}

root_sql() { # node sql...
  local n=$1; shift
  mariadb --no-defaults -uroot --socket="$(node_sock "$n")" --connect-timeout=2 -N -B -e "$*"
}

wsrep_state() { # node -> Synced, Joining, Donor/Desynced, ... or nothing
  root_sql "$1" "SHOW GLOBAL STATUS LIKE 'wsrep_local_state_comment'" 2>/dev/null | awk '{print $2}'
}

wait_synced() { # node seconds
  local n=$1 limit=$2 i state
  for i in $(seq 1 $((limit * 5))); do
    state=$(wsrep_state "$n" || true)
    [ "$state" = "Synced" ] && return 0
    if [ -z "$(node_pid "$n")" ]; then
      log "node $n exited while starting; its log:"; tail -n 30 "$(node_log "$n")" >&2 || true
      return 1
    fi
    sleep 0.2
  done
  log "node $n was not Synced within $limit s (state: ${state:-none}); its log:"; tail -n 30 "$(node_log "$n")" >&2 || true
  return 1
}

# Starts node N's server in the background (bootstrap: 'new') and records its pid.
launch_node() { # node [new|position]
  local n=$1 extra=()
  case "${2:-}" in
    new) extra=(--wsrep-new-cluster) ;;
    "") ;;
    *) extra=(--wsrep_start_position="$2") ;;
  esac
  rm -f "$(node_pidf "$n")"
  "$(mariadbd_bin)" --defaults-file="$(node_cnf "$n")" "${extra[@]}" </dev/null >>"$(node_dir "$n")/stdout.log" 2>&1 &
  echo $! > "$(node_pidf "$n")"
}

# The position a crashed node recorded (uuid:seqno), found by mariadbd --wsrep-recover.
recover_position() {
  local n=$1 before pos
  before=$(wc -l < "$(node_log "$n")" 2>/dev/null || echo 0)
  timeout 60 "$(mariadbd_bin)" --defaults-file="$(node_cnf "$n")" --wsrep-recover </dev/null >/dev/null 2>&1 || true
  pos=$(tail -n +"$((before + 1))" "$(node_log "$n")" 2>/dev/null | sed -nE 's/.*WSREP: Recovered position: *([0-9a-f-]+:-?[0-9]+).*/\1/p' | tail -1)
  echo "$pos"
}

stop_node() { # node
  local n=$1 pid i
  pid=$(node_pid "$n")
  [ -n "$pid" ] || return 0
  mariadb-admin --no-defaults -uroot --socket="$(node_sock "$n")" --connect-timeout=2 shutdown >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
  for i in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  log "node $n did not stop within 30 s: SIGKILL"
  kill -9 "$pid" 2>/dev/null || true
}

kill_node() {
  local n=$1 pid i
  pid=$(node_pid "$n")
  [ -n "$pid" ] || { log "node $n is not running"; return 0; }
  kill -9 "$pid"
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
}

start_node() { # node: a node that was killed or stopped rejoins
  local n=$1 pos t0
  [ -z "$(node_pid "$n")" ] || { log "node $n is already running"; return 0; }
  t0=$(now)
  pos=$(recover_position "$n")
  launch_node "$n" "$pos"
  wait_synced "$n" 90
  log "node $n Synced $(since "$t0") s after start-node${pos:+ (from $pos)}"
}

# ---- HAProxy ----------------------------------------------------------------------------------------
write_haproxy() {
  cat > "$STATE/check.cnf" <<CNF
[client]
user=$CHECK_USER
password=$CHECK_PASS
CNF
  chmod 600 "$STATE/check.cnf"
  # HAProxy runs this with: <proxy addr> <proxy port> <server addr> <server port>. Exit 0 = healthy.
  cat > "$STATE/haproxy-check.sh" <<CHECK
#!/bin/sh
# Healthy = Synced (wsrep_local_state 4), wsrep_ready ON, accepting queries, writable.
# A node that refuses queries or is not in the primary component fails the SELECT itself (1047).
out=\$(timeout 2 mariadb --defaults-extra-file=$STATE/check.cnf --no-auto-rehash --connect-timeout=1 \\
  -h "\$3" -P "\$4" -N -B -e "SELECT CONCAT_WS(' ', @@global.read_only, @@global.wsrep_reject_queries,
    (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_LOCAL_STATE'),
    (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_READY'))" 2>/dev/null) || exit 1
case "\$out" in "OFF NONE 4 ON"|"0 NONE 4 ON") exit 0 ;; *) exit 1 ;; esac
CHECK
  chmod 755 "$STATE/haproxy-check.sh"

  local check_opts server_check
  if [ "$CHECK_KIND" = mysql ]; then
    check_opts="    option mysql-check user $PING_USER post-41"
  else
    check_opts="    option external-check
    external-check path \"/usr/bin:/bin:/usr/sbin:/sbin\"
    external-check command $STATE/haproxy-check.sh"
  fi
  server_check="check inter 1s fastinter 500ms downinter 2s fall 2 rise 2 on-marked-down shutdown-sessions"
  cat > "$STATE/haproxy.cfg" <<CFG
global
    maxconn 2000
    external-check
    insecure-fork-wanted
    stats socket $STATE/haproxy.sock mode 600 level admin
    log stderr format iso local0 info

defaults
    mode tcp
    log global
    option tcplog
    timeout connect 2s
    timeout check 2s
    timeout client ${HAPROXY_TIMEOUT}s
    timeout server ${HAPROXY_TIMEOUT}s

listen galera
    bind 127.0.0.1:$HAPROXY_PORT
$check_opts
    server node1 127.0.0.1:$SQL_PORT $server_check
    server node2 127.0.0.2:$SQL_PORT $server_check backup
    server node3 127.0.0.3:$SQL_PORT $server_check backup
CFG
}

start_haproxy() {
  "$(haproxy_bin)" -c -q -f "$STATE/haproxy.cfg" || die "HAProxy rejected $STATE/haproxy.cfg"
  "$(haproxy_bin)" -db -f "$STATE/haproxy.cfg" </dev/null >>"$STATE/haproxy.log" 2>&1 &
  echo $! > "$STATE/haproxy.pid"
  local i
  for i in $(seq 1 100); do
    [ "$(haproxy_state 1 2>/dev/null || true)" = UP ] && return 0
    kill -0 "$(cat "$STATE/haproxy.pid")" 2>/dev/null || break
    sleep 0.1
  done
  log "HAProxy did not see node 1 UP within 10 s; its log:"; tail -n 20 "$STATE/haproxy.log" >&2 || true
  return 1
}

stop_haproxy() {
  local pid i
  pid=$(haproxy_pid)
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

# UP, DOWN, NOLB, MAINT, ... for node N (HAProxy's "show stat" status column).
haproxy_state() {
  [ -S "$STATE/haproxy.sock" ] || return 1
  echo "show stat" | socat -t 2 - "UNIX-CONNECT:$STATE/haproxy.sock" 2>/dev/null \
    | awk -F, -v s="node$1" '$1 == "galera" && $2 == s { split($18, a, " "); print a[1] }'
}

wait_haproxy() { # node state seconds
  local n=$1 want=$2 limit=${3:-30} t0 state
  t0=$(now)
  while :; do
    state=$(haproxy_state "$n" || true)
    [ "$state" = "$want" ] && { since "$t0"; echo; return 0; }
    if awk -v a="$t0" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
      log "HAProxy did not show node $n $want within $limit s (it shows ${state:-nothing})"
      return 1
    fi
    sleep 0.1
  done
}

# ---- env --------------------------------------------------------------------------------------------
write_env() {
  {
    echo "export NHK_CLUSTER_STATE=$STATE"
    echo "export NHK_CLUSTER_CONTROL=\"$(readlink -f "$0")\""
    echo "export NHK_CLUSTER_NODES=$NODES"
    echo "export NHK_CLUSTER_HOSTS=127.0.0.1,127.0.0.2,127.0.0.3"
    echo "export NHK_CLUSTER_PORT=$SQL_PORT"
    local n
    for n in 1 2 3; do
      echo "export NHK_CLUSTER_NODE${n}_HOST=$(node_host "$n")"
      echo "export NHK_CLUSTER_NODE${n}_PORT=$SQL_PORT"
      echo "export NHK_CLUSTER_NODE${n}_ROOT_SOCKET=$(node_sock "$n")"
    done
    echo "export NHK_CLUSTER_HAPROXY_HOST=127.0.0.1"
    echo "export NHK_CLUSTER_HAPROXY_PORT=$HAPROXY_PORT"
    echo "export NHK_CLUSTER_HAPROXY_TIMEOUT=$HAPROXY_TIMEOUT"
    echo "export NHK_CLUSTER_HAPROXY_CHECK=$CHECK_KIND"
    echo "export NHK_CLUSTER_HAPROXY_SOCKET=$STATE/haproxy.sock"
    echo "export NHK_CLUSTER_USER=$USER_NAME"
    echo "export NHK_CLUSTER_PASSWORD=$USER_PASS"
    echo "export NHK_CLUSTER_DATABASE=$DB_NAME"
  } > "$STATE/env"
}

stop_all() {
  stop_haproxy
  local n pids=()
  for n in 3 2 1; do stop_node "$n" & pids+=($!); done
  wait "${pids[@]}"
}

status() {
  load_ports
  local n pid
  for n in 1 2 3; do
    pid=$(node_pid "$n")
    if [ -z "$pid" ]; then
      printf 'node%s %s:%s  not running\n' "$n" "$(node_host "$n")" "$SQL_PORT"
      continue
    fi
    printf 'node%s %s:%s  pid %s  %s  rss=%sMB  haproxy=%s\n' "$n" "$(node_host "$n")" "$SQL_PORT" "$pid" \
      "$(root_sql "$n" "SELECT CONCAT('state=', (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='WSREP_LOCAL_STATE_COMMENT'),
        ' cluster=', (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='WSREP_CLUSTER_STATUS'),
        ' size=', (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='WSREP_CLUSTER_SIZE'),
        ' ready=', (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='WSREP_READY'),
        ' reject_queries=', @@global.wsrep_reject_queries, ' read_only=', @@global.read_only)" 2>&1 | head -1)" \
      "$(awk '/^VmRSS/ { print int($2 / 1024) }' "/proc/$pid/status" 2>/dev/null)" "$(haproxy_state "$n" || echo "?")"
  done
  pid=$(haproxy_pid)
  printf 'haproxy 127.0.0.1:%s  %s  check=%s  timeout client/server %ss\n' "$HAPROXY_PORT" "${pid:+pid $pid}" "$CHECK_KIND" "$HAPROXY_TIMEOUT"
}

# ---- commands ---------------------------------------------------------------------------------------
cmd=${1:-}
case "$cmd" in
  install) ensure_installed ;;
  start)
    t0=$(now)
    ensure_installed
    [ -f "$STATE/ports" ] && { . "$STATE/ports"; stop_all; }
    rm -rf "$STATE"; mkdir -p "$STATE"; chmod 755 "$STATE"
    getent passwd mysql >/dev/null || useradd --system --no-create-home --shell /bin/false mysql
    pick_ports
    load_ports
    # A start that fails half-way stops whatever it started (the logs stay in $STATE).
    trap 'log "start failed: stopping what it started (logs in $STATE)"; stop_all' EXIT
    for n in 1 2 3; do
      mkdir -p "$(node_dir "$n")/data" "$(node_dir "$n")/tmp" # a tmpdir of its own: see build/mariadb.sh's launch
      write_cnf "$n"
      chown -R mysql:mysql "$(node_dir "$n")"
    done
    # The folders above the state folder must let 'mysql' through.
    runuser -u mysql -- test -w "$(node_dir 1)/data" 2>/dev/null \
      || die "the mysql user cannot reach $STATE (every folder above it must be traversable)"
    mariadb-install-db --no-defaults --user=mysql --datadir="$(node_dir 1)/data" \
      --auth-root-authentication-method=socket --skip-test-db >"$STATE/install.log" 2>&1 \
      || { cat "$STATE/install.log" >&2; die "mariadb-install-db failed"; }
    chown -R mysql:mysql "$(node_dir 1)/data"
    launch_node 1 new
    wait_synced 1 60
    log "node 1 Synced after $(since "$t0") s"
    root_sql 1 "
      CREATE DATABASE $DB_NAME;
      CREATE USER '$USER_NAME'@'127.0.0.%' IDENTIFIED BY '$USER_PASS';
      CREATE USER '$USER_NAME'@'localhost' IDENTIFIED BY '$USER_PASS';
      GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES, CREATE TEMPORARY TABLES,
        LOCK TABLES, EXECUTE, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, TRIGGER, EVENT,
        PROCESS, RELOAD, SUPER, CONNECTION ADMIN ON *.* TO '$USER_NAME'@'127.0.0.%', '$USER_NAME'@'localhost';
      CREATE USER '$CHECK_USER'@'127.0.0.%' IDENTIFIED BY '$CHECK_PASS';
      CREATE USER '$PING_USER'@'127.0.0.%';"
    for n in 2 3; do
      launch_node "$n"
      wait_synced "$n" 90
      log "node $n Synced after $(since "$t0") s"
    done
    write_haproxy
    start_haproxy
    write_env
    trap - EXIT
    log "cluster up after $(since "$t0") s: MariaDB $("$(mariadbd_bin)" --version | awk '{print $3}'), HAProxy on 127.0.0.1:$HAPROXY_PORT, nodes on 127.0.0.1-3:$SQL_PORT (state in $STATE)"
    cat "$STATE/env"
    ;;
  stop)
    if [ -f "$STATE/ports" ]; then load_ports; stop_all; fi
    rm -rf "$STATE"
    ;;
  status) status ;;
  kill) check_node_arg "${2:-}"; load_ports; kill_node "$2" ;;
  stop-node) check_node_arg "${2:-}"; load_ports; stop_node "$2" ;;
  start-node) check_node_arg "${2:-}"; load_ports; start_node "$2" ;;
  reject) check_node_arg "${2:-}"; load_ports; root_sql "$2" "SET GLOBAL wsrep_reject_queries = ALL" ;;
  readonly) check_node_arg "${2:-}"; load_ports; root_sql "$2" "SET GLOBAL read_only = 1" ;;
  isolate) check_node_arg "${2:-}"; load_ports; root_sql "$2" "SET GLOBAL wsrep_provider_options = 'gmcast.isolate=1'" ;;
  heal)
    check_node_arg "${2:-}"; load_ports
    t0=$(now)
    root_sql "$2" "SET GLOBAL wsrep_reject_queries = NONE; SET GLOBAL read_only = 0; SET GLOBAL wsrep_provider_options = 'gmcast.isolate=0'"
    wait_synced "$2" 60
    log "node $2 Synced $(since "$t0") s after heal"
    ;;
  haproxy-state) check_node_arg "${2:-}"; load_ports; haproxy_state "$2" ;;
  wait-haproxy) check_node_arg "${2:-}"; load_ports; wait_haproxy "$2" "${3:?UP or DOWN}" "${4:-30}" ;;
  *) echo "usage: $0 install|start|stop|status|kill N|stop-node N|start-node N|reject N|isolate N|readonly N|heal N|haproxy-state N|wait-haproxy N UP|DOWN [seconds]" >&2; exit 2 ;;
esac
