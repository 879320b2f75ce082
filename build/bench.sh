#!/usr/bin/env bash
# Benchmarks: NHKeepAlive against the stock pools of MySql.Data and MySqlConnector, in one run, on a
# throwaway MariaDB. Writes docs/benchmarks.md. NHK_BENCH_SECONDS sets the seconds per cell (default 3).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export NHK_MARIADB_STATE=${NHK_MARIADB_STATE:-$(mktemp -d /tmp/nhk-bench.XXXXXX)}
trap 'bash "$root/build/mariadb.sh" stop >/dev/null 2>&1 || true' EXIT
bash "$root/build/mariadb.sh" start >/dev/null || { echo "could not start MariaDB"; exit 1; }
# shellcheck disable=SC1091
source "$NHK_MARIADB_STATE/env"
dotnet build "$root/samples/NHKeepAlive.Benchmarks/NHKeepAlive.Benchmarks.csproj" -c Release -nologo -v:q -clp:ErrorsOnly || exit 1
dotnet "$root/samples/NHKeepAlive.Benchmarks/bin/Release/net10.0/NHKeepAlive.Benchmarks.dll" "$root/docs/benchmarks.md"
