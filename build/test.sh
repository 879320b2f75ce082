#!/usr/bin/env bash
# README's test command: builds everything, starts a throwaway MariaDB on 127.0.0.1 with TLS (installing
# mariadb-server with apt-get when it is missing), runs every test project against it, runs the
# driver-contract tests again against the other MySqlConnector versions of the driver matrix, stops the
# server whatever happens, and ends with "Tests: N passed, N failed, N skipped", counted from the TRX
# result files the test runner writes (build/.out/test-results).
#
# To run the tests against a server of your own instead, set NHK_TEST_MYSQL_HOST, _PORT, _USER,
# _PASSWORD and _DATABASE (the user needs PROCESS, SUPER/CONNECTION ADMIN and SYSTEM_VARIABLES_ADMIN
# for the KILL and wait_timeout tests), and for the TLS tests NHK_TEST_MYSQL_TLS_USER (a user that
# REQUIRE SSL on the same database; _TLS_PASSWORD when it differs, _TLS_CA the CA's PEM file); tests
# that restart the server, and the TLS tests without a TLS user, are then skipped.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
configuration=${CONFIGURATION:-Release}
out="$root/build/.out"
mkdir -p "$out"
rm -f "$out"/test-*.log "$out"/restore-*.log "$out"/build-mysqlconnector-*.log

say() { printf '\n== %s\n' "$*"; }

passed=0; failed=0; skipped=0; broken=0

# ---- packages ---------------------------------------------------------------------------------------
# What the server and the cluster tests need (mariadb-server, galera-4, rsync, haproxy: build/cluster.sh
# install) is installed first, in one apt-get run, when missing. Mono, which only the net48 test runs
# need, is then installed in the background while the build and the net10.0 tests run: on a fresh
# machine its install is the longest, and nothing before the first net48 run waits for it.
if [ "$(id -u)" -eq 0 ]; then
  bash "$root/build/cluster.sh" install 2>&1 | sed 's/^/  /' || echo "could not install the cluster's packages (the cluster tests will say why)"
fi
mono_install=""
if ! command -v mono >/dev/null 2>&1; then
  say "installing mono-complete in the background (runs the net48 tests)"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get -o DPkg::Lock::Timeout=300 update -qq && apt-get -o DPkg::Lock::Timeout=300 install -y -qq mono-complete; } > "$out/apt-mono.log" 2>&1 &
  mono_install=$!
fi
wait_for_mono() {
  [ -n "$mono_install" ] || return 0
  say "waiting for the mono-complete install"
  local started=$SECONDS
  wait "$mono_install" || { tail -20 "$out/apt-mono.log"; echo "could not install mono-complete"; }
  echo "  (waited $((SECONDS - started)) s)"
  mono_install=""
}

# ---- the server -------------------------------------------------------------------------------
if [ -z "${NHK_TEST_MYSQL_HOST:-}" ]; then
  export NHK_MARIADB_STATE=${NHK_MARIADB_STATE:-$(mktemp -d /tmp/nhk-mariadb.XXXXXX)}
  say "starting a throwaway MariaDB ($NHK_MARIADB_STATE)"
  trap 'bash "$root/build/mariadb.sh" stop >/dev/null 2>&1 || true' EXIT
  bash "$root/build/mariadb.sh" start >/dev/null || { echo "could not start MariaDB"; echo "Tests: 0 passed, 1 failed, 0 skipped"; exit 1; }
  own_server=1
  # shellcheck disable=SC1091
  source "$NHK_MARIADB_STATE/env"
  echo "MariaDB $(mariadb --no-defaults -uroot --socket="$NHK_TEST_MYSQL_ROOT_SOCKET" -N -e 'SELECT VERSION()') on 127.0.0.1:$NHK_TEST_MYSQL_PORT"
else
  echo "using the server at $NHK_TEST_MYSQL_HOST:${NHK_TEST_MYSQL_PORT:-3306} from the environment"
fi

# ---- which projects need NHibernate ---------------------------------------------------------------
# NHibernate and FluentNHibernate are real PackageReferences. Where no package source has them (set
# NHKEEPALIVE_PACKAGE_SOURCE to a folder or feed that does), the projects that need them are left
# out and their tests are reported as skipped, with that reason.
# (A reference with a Condition on its line, such as the samples' WithNHibernate switch, is optional
# and does not count.)
needs_nh() { grep -E 'PackageReference Include="(NHibernate|FluentNHibernate)"' "$1" | grep -qv 'Condition='; }
optional=()
for project in "$root"/src/*/*.csproj "$root"/tests/*/*.csproj "$root"/samples/*/*.csproj; do
  [ -f "$project" ] || continue
  needs_nh "$project" && optional+=("$project")
done
# Projects that reference an optional project need NHibernate too.
for _ in 1 2 3; do
  for project in "$root"/src/*/*.csproj "$root"/tests/*/*.csproj "$root"/samples/*/*.csproj; do
    [ -f "$project" ] || continue
    case " ${optional[*]} " in *" $project "*) continue ;; esac
    for dep in "${optional[@]}"; do
      if grep "ProjectReference Include=\"[^\"]*$(basename "$dep")\"" "$project" | grep -qv 'Condition='; then optional+=("$project"); break; fi
    done
  done
done

nh_available=1
nh_reason=""
if [ "${#optional[@]}" -gt 0 ]; then
  say "restoring the NHibernate-dependent projects${NHKEEPALIVE_PACKAGE_SOURCE:+ (extra package source: $NHKEEPALIVE_PACKAGE_SOURCE)}"
  for project in "${optional[@]}"; do
    if ! dotnet restore "$project" --force-evaluate -nologo -v:q > "$out/restore-$(basename "$project" .csproj).log" 2>&1; then
      nh_available=0
      if grep -qE 'NU110[1-3].*(NHibernate|FluentNHibernate)' "$out/restore-$(basename "$project" .csproj).log"; then
        nh_reason="NHibernate/FluentNHibernate cannot be restored from the configured package sources (set NHKEEPALIVE_PACKAGE_SOURCE to a folder or feed that has them)"
      else
        nh_reason="restoring $(basename "$project") failed (see build/.out/restore-$(basename "$project" .csproj).log)"
      fi
      break
    fi
  done
  if [ "$nh_available" -eq 1 ]; then echo "NHibernate and FluentNHibernate restored"; else echo "skipping: $nh_reason"; fi
fi

# ---- build ------------------------------------------------------------------------------------
say "building ($configuration)"
target="$root/NHKeepAlive.sln"
if [ "$nh_available" -eq 0 ]; then
  # A solution filter with every project that needs no NHibernate.
  target="$out/without-nhibernate.slnf"
  {
    echo '{ "solution": { "path": "../../NHKeepAlive.sln", "projects": ['
    first=1
    while IFS= read -r rel; do
      abs="$root/$rel"
      case " ${optional[*]} " in *" $abs "*) continue ;; esac
      [ "$first" -eq 1 ] || echo ','
      printf '  "%s"' "$rel"; first=0
    done < <(dotnet sln "$root/NHKeepAlive.sln" list | tail -n +3 | tr '\\' '/')
    echo '] } }'
  } > "$target"
fi
if ! dotnet build "$target" -c "$configuration" -nologo -v:q -clp:ErrorsOnly > "$out/build.log" 2>&1; then
  cat "$out/build.log"
  echo "the build failed"
  echo "Tests: 0 passed, 1 failed, 0 skipped"
  exit 1
fi
echo "built"

# ---- tests ------------------------------------------------------------------------------------
# Results are counted from the TRX file the test runner writes for each project and target framework
# (dotnet test --logger trx), never from console text. This SDK's TRX logger writes, in
# <ResultSummary><Counters .../>: total, executed, passed, failed, error, timeout, aborted, ... and
# notExecuted, but leaves notExecuted at 0 for skipped (ignored) tests, which it leaves out of
# "executed" only. So: passed = passed; failed = failed + error + timeout + aborted, plus any executed
# test with no passing or failing outcome (inconclusive and the like); skipped = total - executed.
trx_counts() {
  # Prints "passed failed skipped" from the Counters element of one TRX file, or nothing.
  sed -n 's/.*<Counters \([^>]*\)\/>.*/\1/p' "$1" | head -1 | awk '
    { for (i = 1; i <= NF; i++) { split($i, kv, "="); gsub(/"/, "", kv[2]); c[kv[1]] = kv[2] + 0 } }
    END {
      if (!("total" in c)) exit 1
      f = c["failed"] + c["error"] + c["timeout"] + c["aborted"]
      other = c["executed"] - c["passed"] - f; if (other < 0) other = 0
      print c["passed"], f + other, c["total"] - c["executed"]
    }'
}

# Fallback for projects that cannot be built here (they need NHibernate and it does not restore):
# without a build there is no runner to list or run their tests, so their skipped count is estimated
# from the source: [Test], [TestCase(...)] and [TestCaseSource(...)] (one each), times the
# [TestFixture(...)] of their class, times the target frameworks. Used for nothing else.
count_tests() {
  cat "$@" | awk '
    /^[ \t]*\[TestFixture\(/ { pending++; next }
    /^[ \t]*(public |internal )?(sealed |abstract )*class / { mult = pending > 0 ? pending : 1; pending = 0; next }
    /^[ \t]*\[(Test\]|TestCase\(|TestCaseSource\()/ { total += mult }
    END { print total + 0 }'
}

# Adds one test run's counts (from its TRX file) to the totals and prints them; a run that wrote no
# results, or whose runner failed with no failed test, counts as one failure. Arguments: the run's label,
# its TRX file, its console log and dotnet test's exit status.
tally() {
  local label=$1 trx=$2 log=$3 status=$4 counts p f s
  grep -E '^\s+(Failed|Skipped) ' -A3 "$log" | grep -vE '^--$' | head -200
  if [ -f "$trx" ] && counts=$(trx_counts "$trx") && [ -n "$counts" ]; then
    read -r p f s <<< "$counts"
    failed=$((failed + f)); passed=$((passed + p)); skipped=$((skipped + s))
    echo "$label: $p passed, $f failed, $s skipped (from ${trx#"$root"/})"
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
      # The runner failed without a failed test in its results (a crashed test host, a broken run).
      echo "$label: dotnet test exited $status with no failed test in its results; the end of its log:"; tail -n 40 "$log"
      broken=$((broken + 1))
    fi
  else
    echo "$label wrote no test results (exit $status); the end of its log:"; tail -n 40 "$log"
    broken=$((broken + 1))
  fi
}

results="$out/test-results"
rm -rf "$results"
mkdir -p "$results"
# One leg: the project's tests on one target framework, those the filter selects, into their own TRX file.
# Arguments: the label, the project, the target framework, the TRX name (no folder), the filter ("" for all).
run_leg() {
  local label=$1 project=$2 tfm=$3 name=$4 filter=$5 log="$out/test-${4%.trx}.log"
  dotnet test "$project" -f "$tfm" -c "$configuration" --no-build -nologo ${filter:+--filter "$filter"} \
    --logger "console;verbosity=normal" --logger "trx;LogFileName=$name" --results-directory "$results" > "$log" 2>&1
  local status=$?
  if [ -n "$filter" ] && [ ! -f "$results/$name" ] && grep -q 'No test matches the given testcase filter' "$log"; then
    return 0 # A subset this framework does not have (the cluster tests are net10.0-only in some projects).
  fi
  tally "$label" "$results/$name" "$log" $status
}

# The runs share servers, and some tests restart a server or change its global variables, so legs that
# use one server run one at a time. With the throwaway server, a second one is started for the net48
# legs: after each project's cluster tests (namespace *.Integration.Cluster: a Galera cluster the tests
# start, one at a time) have run alone, the project's other net10.0 tests and its net48 tests run side by
# side, each against its own server. Its wall time is then that of the longer leg, not of both.
cluster_filter='FullyQualifiedName~.Integration.Cluster.'
second_server=""
if [ -n "${NHK_MARIADB_STATE:-}" ] && [ -z "${NHK_TEST_SERIAL:-}" ] && [ "${own_server:-0}" -eq 1 ]; then
  second_server=$(mktemp -d /tmp/nhk-mariadb.XXXXXX)
  if NHK_MARIADB_STATE="$second_server" bash "$root/build/mariadb.sh" start >/dev/null; then
    trap 'bash "$root/build/mariadb.sh" stop >/dev/null 2>&1 || true; NHK_MARIADB_STATE="$second_server" bash "$root/build/mariadb.sh" stop >/dev/null 2>&1 || true' EXIT
  else
    echo "could not start a second MariaDB: the net48 legs run after the net10.0 ones"
    second_server=""
  fi
fi

for project in "$root"/tests/*/*.csproj; do
  name=$(basename "$project" .csproj)
  tfms=$(sed -nE 's|.*<TargetFrameworks?>([^<]+)</TargetFrameworks?>.*|\1|p' "$project" | head -1 | tr ';' ' ')
  case " ${optional[*]} " in
    *" $project "*)
      if [ "$nh_available" -eq 0 ]; then
        per_tfm=$(count_tests $(find "$(dirname "$project")" -name '*.cs' -not -path '*/obj/*' -not -path '*/bin/*'))
        n=$((per_tfm * $(echo $tfms | wc -w)))
        say "testing $name"
        echo "$name ($tfms): $n skipped: $nh_reason"
        echo "  (not built, so no test runner result: $n is counted from the [Test]/[TestCase]/[TestCaseSource] attributes in its source, $per_tfm per target framework)"
        skipped=$((skipped + n))
        continue
      fi ;;
  esac
  modern=""; framework=""
  for tfm in $tfms; do case "$tfm" in net4*) framework=$tfm ;; *) modern=$tfm ;; esac; done
  if [ -z "$second_server" ] || [ -z "$modern" ] || [ -z "$framework" ] \
      || ! grep -rqs --include='*.cs' -E '^namespace [A-Za-z.]*\.Integration\.Cluster;' "$(dirname "$project")"; then
    # One target framework at a time.
    for tfm in $tfms; do
      case "$tfm" in net4*) runtime=" under Mono"; wait_for_mono ;; *) runtime="" ;; esac
      say "testing $name ($tfm$runtime)"
      run_leg "$name ($tfm)" "$project" "$tfm" "$name-$tfm.trx" ""
    done
    continue
  fi

  for tfm in $modern $framework; do
    case "$tfm" in net4*) runtime=" under Mono"; wait_for_mono ;; *) runtime="" ;; esac
    say "testing $name ($tfm$runtime, the cluster tests)"
    run_leg "$name ($tfm, cluster)" "$project" "$tfm" "$name-$tfm-cluster.trx" "$cluster_filter"
  done
  say "testing $name ($modern) and, beside it against a second server, $name ($framework under Mono)"
  started=$SECONDS
  ( # shellcheck disable=SC1091
    source "$second_server/env"
    passed=0; failed=0; skipped=0; broken=0
    run_leg "$name ($framework)" "$project" "$framework" "$name-$framework.trx" "FullyQualifiedName!~.Integration.Cluster." > "$out/tally-$name-$framework.txt"
    echo "$passed $failed $skipped $broken" > "$out/counts-$name-$framework.txt"
  ) &
  beside=$!
  before="$passed $failed $skipped $broken"
  passed=0; failed=0; skipped=0; broken=0
  run_leg "$name ($modern)" "$project" "$modern" "$name-$modern.trx" "FullyQualifiedName!~.Integration.Cluster."
  wait "$beside"
  cat "$out/tally-$name-$framework.txt"
  read -r p f s b < "$out/counts-$name-$framework.txt"
  read -r p0 f0 s0 b0 <<< "$before"
  passed=$((passed + p + p0)); failed=$((failed + f + f0)); skipped=$((skipped + s + s0)); broken=$((broken + b + b0))
  echo "  (both legs in $((SECONDS - started)) s)"
done

# ---- the driver matrix ------------------------------------------------------------------------
# The full suite above runs on the primary driver versions (MySqlConnector 2.6.2, MySql.Data 26.10.0).
# The driver-contract set (category DriverContract: the socket check after a KILL, session reset,
# transaction detection, keepalive and wire pings, over TLS too, and a check that the driver loaded is
# the one asked for) runs again, on net10.0, against each other MySqlConnector version users have:
# the project built with -p:MySqlConnectorVersion=V into build/.out/driver-matrix/ (its own obj and
# bin; see tests/NHKeepAlive.Tests/Directory.Build.props), its MySqlConnector fixtures run.
# NHK_DRIVER_MATRIX="2.4.0 3.0.0" by default; set it empty to skip. (MySql.Data 8.0.x is not run: it
# cannot read MariaDB 10.6+'s utf8mb3.)
contract_project="$root/tests/NHKeepAlive.Tests/NHKeepAlive.Tests.csproj"
for version in ${NHK_DRIVER_MATRIX-2.4.0 3.0.0}; do
  label="NHKeepAlive.Tests (net10.0, MySqlConnector $version, driver contract)"
  say "testing $label"
  started=$SECONDS
  if ! dotnet build "$contract_project" -c "$configuration" -f net10.0 --no-dependencies -p:MySqlConnectorVersion="$version" \
      -nologo -v:q -clp:ErrorsOnly > "$out/build-mysqlconnector-$version.log" 2>&1; then
    tail -n 40 "$out/build-mysqlconnector-$version.log"
    echo "$label: the build failed (build/.out/build-mysqlconnector-$version.log)"
    broken=$((broken + 1))
    continue
  fi
  built=$((SECONDS - started))
  log="$out/test-NHKeepAlive.Tests-net10.0-mysqlconnector-$version.log"
  trx="$results/NHKeepAlive.Tests-net10.0-mysqlconnector-$version.trx"
  dotnet test "$contract_project" -f net10.0 -c "$configuration" --no-build -nologo -p:MySqlConnectorVersion="$version" \
    --filter 'TestCategory=DriverContract&FullyQualifiedName~\(MySqlConnector\)' \
    --logger "console;verbosity=normal" --logger "trx;LogFileName=$(basename "$trx")" --results-directory "$results" > "$log" 2>&1
  tally "$label" "$trx" "$log" $?
  if [ -f "$trx" ] && [ "$(trx_counts "$trx" | awk '{ print $1 + $2 }')" = 0 ]; then
    # The filter matched nothing (the fixtures renamed, the category dropped): the leg checked nothing.
    echo "$label: no test ran (filter: category DriverContract, MySqlConnector fixtures)"
    broken=$((broken + 1))
  fi
  echo "  (build $built s, tests $((SECONDS - started - built)) s)"
done

failed=$((failed + broken))
echo
echo "Tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
