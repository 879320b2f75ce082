#!/usr/bin/env bash
# README's test command: builds everything, starts a throwaway MariaDB on 127.0.0.1 (installing
# mariadb-server with apt-get when it is missing), runs every test project against it, stops the
# server whatever happens, and ends with "Tests: N passed, N failed, N skipped".
#
# To run the tests against a server of your own instead, set NHK_TEST_MYSQL_HOST, _PORT, _USER,
# _PASSWORD and _DATABASE (the user needs PROCESS, SUPER/CONNECTION ADMIN and SYSTEM_VARIABLES_ADMIN
# for the KILL and wait_timeout tests); tests that restart the server are then skipped.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
configuration=${CONFIGURATION:-Release}
out="$root/build/.out"
mkdir -p "$out"
rm -f "$out"/test-*.log "$out"/restore-*.log

say() { printf '\n== %s\n' "$*"; }

passed=0; failed=0; skipped=0; broken=0

# ---- Mono, for the net48 test targets ---------------------------------------------------------------
# `dotnet test` runs the .NET Framework (net48) builds of the test projects under Mono here.
if ! command -v mono >/dev/null 2>&1; then
  say "installing mono-complete (runs the net48 tests)"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq mono-complete; } > "$out/apt-mono.log" 2>&1 || { tail -20 "$out/apt-mono.log"; echo "could not install mono-complete"; }
fi

# ---- the server -------------------------------------------------------------------------------
if [ -z "${NHK_TEST_MYSQL_HOST:-}" ]; then
  export NHK_MARIADB_STATE=${NHK_MARIADB_STATE:-$(mktemp -d /tmp/nhk-mariadb.XXXXXX)}
  say "starting a throwaway MariaDB ($NHK_MARIADB_STATE)"
  trap 'bash "$root/build/mariadb.sh" stop >/dev/null 2>&1 || true' EXIT
  bash "$root/build/mariadb.sh" start >/dev/null || { echo "could not start MariaDB"; echo "Tests: 0 passed, 1 failed, 0 skipped"; exit 1; }
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
count_tests() {
  # [Test], [TestCase(...)] and [TestCaseSource(...)], times the [TestFixture(...)] of their class.
  cat "$@" | awk '
    /^[ \t]*\[TestFixture\(/ { pending++; next }
    /^[ \t]*(public |internal )?(sealed |abstract )*class / { mult = pending > 0 ? pending : 1; pending = 0; next }
    /^[ \t]*\[(Test\]|TestCase\(|TestCaseSource\()/ { total += mult }
    END { print total + 0 }'
}

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
        skipped=$((skipped + n))
        continue
      fi ;;
  esac
  # One target framework at a time: the runs share one server, and some tests restart it or change
  # its global variables.
  for tfm in $tfms; do
    log="$out/test-$name-$tfm.log"
    case "$tfm" in net4*) runtime=" under Mono" ;; *) runtime="" ;; esac
    say "testing $name ($tfm$runtime)"
    dotnet test "$project" -f "$tfm" -c "$configuration" --no-build -nologo --logger "console;verbosity=normal" > "$log" 2>&1
    status=$?
    grep -E '^\s+(Failed|Skipped) ' -A3 "$log" | grep -vE '^--$' | head -200
    # The console logger's closing block: "Total tests: N", then "Passed: N", "Failed: N", "Skipped: N".
    read -r f p s found < <(awk '
      /^Total tests:/ { found++ }
      found && /^ +Passed: +[0-9]+$/  { p += $2 }
      found && /^ +Failed: +[0-9]+$/  { f += $2 }
      found && /^ +Skipped: +[0-9]+$/ { s += $2 }
      END { print f+0, p+0, s+0, found+0 }' "$log")
    failed=$((failed + f)); passed=$((passed + p)); skipped=$((skipped + s))
    echo "$name ($tfm): $p passed, $f failed, $s skipped"
    if [ "$status" -ne 0 ] && [ "$found" -eq 0 ]; then
      echo "$name ($tfm) did not report results (exit $status); the end of its log:"; tail -n 40 "$log"
      broken=$((broken + 1))
    fi
  done
done

failed=$((failed + broken))
echo
echo "Tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
