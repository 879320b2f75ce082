#!/usr/bin/env bash
# README's first command: starts a throwaway MariaDB (installing mariadb-server when missing), runs the
# same application workload on the stock configuration and on NHKeepAlive through the faults that cause
# "MySQL server has gone away", prints what callers saw, and draws docs/demo-latency.png.
# Through NHibernate where NHibernate can be restored (NHKEEPALIVE_PACKAGE_SOURCE), else at the connection level.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
out="$root/build/.out"
mkdir -p "$out"

export NHK_MARIADB_STATE=${NHK_MARIADB_STATE:-$(mktemp -d /tmp/nhk-demo.XXXXXX)}
trap 'bash "$root/build/mariadb.sh" stop >/dev/null 2>&1 || true' EXIT
echo "starting a throwaway MariaDB..."
bash "$root/build/mariadb.sh" start >/dev/null || { echo "could not start MariaDB"; exit 1; }
# shellcheck disable=SC1091
source "$NHK_MARIADB_STATE/env"

with_nh=false
if dotnet restore "$root/src/NHKeepAlive.NHibernate/NHKeepAlive.NHibernate.csproj" --force-evaluate -nologo -v:q > "$out/demo-restore.log" 2>&1; then
  with_nh=true
fi
echo "building the demo (NHibernate: $with_nh)..."
if ! dotnet build "$root/samples/NHKeepAlive.Demo/NHKeepAlive.Demo.csproj" -c Release -nologo -v:q -clp:ErrorsOnly -p:WithNHibernate=$with_nh > "$out/demo-build.log" 2>&1; then
  cat "$out/demo-build.log"; exit 1
fi
dotnet "$root/samples/NHKeepAlive.Demo/bin/Release/net10.0/NHKeepAlive.Demo.dll" "$root/docs/demo-latency.png" "$root"
