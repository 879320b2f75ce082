#!/usr/bin/env bash
# Benchmarks: NHKeepAlive (with its socket check and session reset on and off) against the stock pools of
# MySql.Data and MySqlConnector, in one run, on a throwaway MariaDB; then the cost of one socket poll, the
# first query after a fault, and the keepalive's CPU per ping net of the idle baseline. Writes
# docs/benchmarks.md. About 5-6 minutes on 2 cores. NHK_BENCH_SECONDS sets the seconds per cell (default
# 2.5), NHK_BENCH_ROUNDS the slices each cell is measured in, taking turns with the other configurations
# of the same driver (default 5). NHK_BENCH_TENANTS sets the tenant databases of the tenants table
# (default 1000; they are created and dropped by the run, and max_connections is raised for them).
#
# NHK_BENCH_FAILOVER=1 (or the flag --failover) adds the failover table: a throwaway 3-node Galera
# cluster with HAProxy (build/cluster.sh; root, Debian packages, 3 GiB free), 8 writers on the stock
# pools through HAProxy and on NHKeepAlive with the host list, through node 1 refusing queries, turning
# read-only and being killed (about 4 more minutes; the cluster NHK_CLUSTER_STATE names is used and left
# running, else one is started and stopped). Without it, the table of the last run that measured it is
# kept in docs/benchmarks.md. NHK_BENCH_ONLY=throughput,poll,first,keepalive,tenants,failover measures only
# those sections, into a side file in the temp folder (docs/benchmarks.md is untouched).
set -uo pipefail
for arg in "$@"; do
  case "$arg" in
    --failover) export NHK_BENCH_FAILOVER=1 ;;
    *) echo "usage: $0 [--failover]" >&2; exit 2 ;;
  esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export NHK_MARIADB_STATE=${NHK_MARIADB_STATE:-$(mktemp -d /tmp/nhk-bench.XXXXXX)}
trap 'bash "$root/build/mariadb.sh" stop >/dev/null 2>&1 || true' EXIT
bash "$root/build/mariadb.sh" start >/dev/null || { echo "could not start MariaDB"; exit 1; }
# shellcheck disable=SC1091
source "$NHK_MARIADB_STATE/env"
dotnet build "$root/samples/NHKeepAlive.Benchmarks/NHKeepAlive.Benchmarks.csproj" -c Release -nologo -v:q -clp:ErrorsOnly || exit 1
dotnet "$root/samples/NHKeepAlive.Benchmarks/bin/Release/net10.0/NHKeepAlive.Benchmarks.dll" "$root/docs/benchmarks.md" "$root"
