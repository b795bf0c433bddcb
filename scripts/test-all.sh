#!/usr/bin/env bash
# Every Meridian test: what `make test` runs. Works on a fresh Debian 12 machine as root (or as a
# user with sudo) and is idempotent. Sections, in order, stopping at the first failure:
#   1. dependencies   scripts/install-deps.sh (apt-get, only what is missing)
#   2. build          make -j2 && make install (the extension)
#   3. unit           GoogleTest via CMake into build/, then ctest          (skipped if test/unit is empty)
#   4. regress        pg_regress over sql/*.sql, then pg_isolation_regress over
#                     test/isolation/specs/*.spec, on one throwaway cluster   (each skipped if empty)
#   5. tap            prove over test/tap/*.pl with PostgreSQL::Test::Cluster, as the postgres user
# The last line is "N passed, N failed", counting tests: each ctest test (one per GoogleTest case),
# each pg_regress and isolation test and each TAP test script. A failing step that is not a test (dependencies,
# build) counts as one failed. Exit status 0 only if nothing failed.
#
# Everything the tests write goes under .run/ (git-ignored): .run/regress (pg_regress output),
# .run/isolation (pg_isolation_regress output),
# .run/test-regress (its cluster), .run/tap (TAP TESTDIR: tmp_check with node data and logs).
# Environment: MERIDIAN_TEST_PORT (default 55420) is the regress cluster's loopback port;
# PROVE_FLAGS (e.g. -v) is passed to prove.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# Run the same whether started by `make test` or directly: no inherited jobserver or flags.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
export DEBIAN_FRONTEND=noninteractive

passed=0
failed=0
lock=/tmp/meridian-build.lock
run="$root/.run"
regress_cluster=test-regress
regress_port=${MERIDIAN_TEST_PORT:-55420}

section() { printf '\n==== [%s] %s ====\n' "$1" "$2"; }
note() { printf -- '-- %s\n' "$*"; }

finish() {
  printf '\n%d passed, %d failed\n' "$passed" "$failed"
  [ "$failed" -eq 0 ]
  exit
}

# Fail fast: count the failure, print the summary, stop.
fail() {
  note "FAILED: $1"
  failed=$((failed + ${2:-1}))
  finish
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"
  elif [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"
  else sudo -u postgres -- "$@"
  fi
}

# Serialize builds with the other users of a shared tree (a no-op cost in CI).
locked() { flock "$lock" "$@"; }

# The clusters run as postgres inside the checkout, so postgres must be able to reach it. A
# checkout under /root (mode 700) is not reachable: grant search permission (x, not read) on
# each directory above the checkout that lacks it.
ensure_postgres_can_reach_checkout() {
  local d=$root dirs=()
  while [ "$d" != / ]; do dirs=("$d" "${dirs[@]}"); d=$(dirname "$d"); done
  for d in "${dirs[@]}"; do
    if ! as_postgres test -x "$d"; then
      note "granting the postgres user search permission on $d (chmod o+x) so it can reach the checkout"
      as_root chmod o+x "$d" || return 1
    fi
  done
  as_postgres test -r "$root/Makefile" || { note "postgres cannot read $root/Makefile (umask?)"; return 1; }
}

stop_regress_cluster() {
  [ -d "$run/$regress_cluster" ] && scripts/cluster.sh stop "$regress_cluster" >/dev/null 2>&1
  return 0
}
trap stop_regress_cluster EXIT

# ---------------------------------------------------------------------------------------------
section 1/5 "dependencies: scripts/install-deps.sh"
bash scripts/install-deps.sh || fail "scripts/install-deps.sh"
note "all packages installed"

# ---------------------------------------------------------------------------------------------
section 2/5 "build and install the extension: make -j2 && make install"
mkdir -p "$run" && chmod 755 "$run"
if ! locked make -j2 >"$run/build.log" 2>&1; then
  tail -n 60 "$run/build.log"; fail "make (full log: .run/build.log)"
fi
if ! as_root flock "$lock" make install >>"$run/build.log" 2>&1; then
  tail -n 30 "$run/build.log"; fail "make install (full log: .run/build.log)"
fi
note "installed into $(pg_config --pkglibdir) and $(pg_config --sharedir)/extension"

# ---------------------------------------------------------------------------------------------
section 3/5 "unit tests: GoogleTest (CMake into build/, ctest)"
shopt -s nullglob
unit_sources=(test/unit/*.cpp)
if [ ${#unit_sources[@]} -eq 0 ]; then
  note "no test/unit/*.cpp yet: skipped"
else
  if ! { locked cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$run/cmake.log" 2>&1 &&
         locked cmake --build build -j2 >>"$run/cmake.log" 2>&1; }; then
    tail -n 60 "$run/cmake.log"; fail "CMake build of the unit tests (full log: .run/cmake.log)"
  fi
  ctest --test-dir build --output-on-failure --no-tests=error -j2 2>&1 | tee "$run/ctest.log"
  ctest_rc=${PIPESTATUS[0]}
  # "NN% tests passed, F tests failed out of T"
  read -r f t < <(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of \([0-9]*\).*/\1 \2/p' "$run/ctest.log" | tail -1)
  if [ -n "${t:-}" ]; then
    passed=$((passed + t - f)); failed=$((failed + f))
  fi
  [ "$ctest_rc" -eq 0 ] || fail "unit tests" "$([ -n "${t:-}" ] && echo 0 || echo 1)"
fi

# ---------------------------------------------------------------------------------------------
section 4/5 "regression tests: pg_regress over sql/*.sql, isolation tests over test/isolation/specs"
ensure_postgres_can_reach_checkout || fail "the postgres user cannot reach $root"
regress_tests=()
for f in sql/*.sql; do t=${f#sql/}; regress_tests+=("${t%.sql}"); done
isolation_tests=()
for f in test/isolation/specs/*.spec; do t=${f##*/}; isolation_tests+=("${t%.spec}"); done
# pg_regress stops at the first test without an expected output; name them all up front.
missing=()
for t in "${regress_tests[@]}"; do
  compgen -G "expected/$t.out" >/dev/null || compgen -G "expected/${t}_[0-9].out" >/dev/null || missing+=("sql/$t.sql")
done
for t in "${isolation_tests[@]}"; do
  [ -f "test/isolation/expected/$t.out" ] || missing+=("test/isolation/specs/$t.spec")
done
if [ ${#missing[@]} -gt 0 ]; then
  for t in "${missing[@]}"; do note "$t has no expected output"; done
  fail "${#missing[@]} regression or isolation test(s) without expected output" "${#missing[@]}"
fi

# Runs one of PostgreSQL's regression drivers ($1: pg_regress or pg_isolation_regress) over the
# tests named after the options, output in $run/$2; counts its results and, on failure, shows
# the diffs (or the server log when there are none) and stops.
run_regress_driver() {
  local driver=$1 name=$2 outdir="$run/$2" log="$run/$2.log" rc ok bad
  shift 2
  rm -rf "$outdir"; mkdir -p "$outdir"
  "$driver" --outputdir="$outdir" --bindir="$(pg_config --bindir)" --load-extension=meridian "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  ok=$(grep -cE '\.\.\. +ok' "$log")
  bad=$(grep -cE '\.\.\. +FAILED' "$log")
  passed=$((passed + ok)); failed=$((failed + bad))
  [ "$rc" -eq 0 ] && return 0
  if [ -s "$outdir/regression.diffs" ]; then
    note "regression.diffs (.run/$name/regression.diffs):"; cat "$outdir/regression.diffs"
    grep -E 'terminated by signal|PANIC|TRAP:' "$run/$regress_cluster/server.log" &&
      note "(server log: .run/$regress_cluster/server.log)"
  else
    note "server log tail (.run/$regress_cluster/server.log):"; tail -n 30 "$run/$regress_cluster/server.log"
  fi
  scripts/cluster.sh stop "$regress_cluster"
  fail "$(basename "$driver")" "$([ "$bad" -gt 0 ] && echo 0 || echo 1)"
}

if [ ${#regress_tests[@]} -eq 0 ] && [ ${#isolation_tests[@]} -eq 0 ]; then
  note "no sql/*.sql or test/isolation/specs/*.spec yet: skipped"
else
  pgxs_src=$(dirname "$(dirname "$(pg_config --pgxs)")")
  scripts/cluster.sh destroy "$regress_cluster"
  # Logical decoding (the output plugin's tests), commit timestamps (last-writer-wins apply) and
  # meridian preloaded (the consistency test needs its shared memory).
  scripts/cluster.sh start "$regress_cluster" "$regress_port" 'wal_level = logical' \
    'track_commit_timestamp = on' 'max_replication_slots = 10' 'max_wal_senders = 10' \
    "shared_preload_libraries = 'meridian'" \
    || fail "starting the regress cluster on port $regress_port"
  note "cluster $regress_cluster on 127.0.0.1:$regress_port (data and server.log in .run/$regress_cluster)"
  eval "$(scripts/cluster.sh env "$regress_cluster")"
  if [ ${#regress_tests[@]} -gt 0 ]; then
    run_regress_driver "$pgxs_src/test/regress/pg_regress" regress --inputdir="$root" \
      --dbname=contrib_regression "${regress_tests[@]}"
  fi
  # Concurrency: isolationtester runs each spec's sessions in their own connections.
  if [ ${#isolation_tests[@]} -gt 0 ]; then
    run_regress_driver "$pgxs_src/test/isolation/pg_isolation_regress" isolation \
      --inputdir="$root/test/isolation" --dbname=isolation_regression "${isolation_tests[@]}"
  fi
  scripts/cluster.sh destroy "$regress_cluster"
fi

# ---------------------------------------------------------------------------------------------
section 5/5 "TAP tests: prove over test/tap/*.pl (PostgreSQL::Test::Cluster, as postgres)"
tap_tests=(test/tap/*.pl)
if [ ${#tap_tests[@]} -eq 0 ]; then
  note "no test/tap/*.pl yet: skipped"
else
  # A PGXS VPATH build directory owned by postgres is the TESTDIR: prove runs from the source
  # directory, tmp_check (node data, logs) lands in .run/tap/tmp_check.
  tapdir="$run/tap"
  # Nodes of an interrupted earlier run may still be running: stop them before deleting.
  for pgdata in "$tapdir"/tmp_check/t_*_data/pgdata; do
    [ -f "$pgdata/postmaster.pid" ] && as_postgres "$(pg_config --bindir)/pg_ctl" -D "$pgdata" -m immediate -w stop >/dev/null 2>&1
  done
  as_root rm -rf "$tapdir"
  as_root install -d -o postgres -g postgres "$tapdir" "$tapdir/tmp"
  # Unix-socket directories (Cluster.pm's tempdir_short) also under .run, when the path is short
  # enough for a socket name (sun_path is 108 bytes).
  tmpdir=/tmp
  [ ${#tapdir} -le 60 ] && tmpdir="$tapdir/tmp"
  # initdb takes its locale from the environment: use one that exists on every Debian system.
  as_postgres env -u LC_CTYPE -u LC_COLLATE -u LC_NUMERIC -u LC_MONETARY -u LC_TIME \
    LANG=C.UTF-8 TMPDIR="$tmpdir" make -s --no-print-directory -C "$tapdir" -f "$root/Makefile" VPATH="$root" \
    PROVE_FLAGS="${PROVE_FLAGS:-}" prove_installcheck 2>&1 | tee "$run/tap.log"
  tap_rc=${PIPESTATUS[0]}
  # prove's summary: "Files=F, Tests=T, ..." and, on failure, "Failed X/F test programs."
  files=$(sed -n 's/^Files=\([0-9]*\),.*/\1/p' "$run/tap.log" | tail -1)
  bad=$(sed -n 's/^Failed \([0-9]*\)\/[0-9]* test programs.*/\1/p' "$run/tap.log" | tail -1)
  if [ -n "$files" ]; then
    bad=${bad:-0}
    [ "$tap_rc" -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
    passed=$((passed + files - bad)); failed=$((failed + bad))
  fi
  if [ "$tap_rc" -ne 0 ]; then
    # prove's "Test Summary Report" names each failed script: show the end of its log.
    for t in $(sed -n 's/^\(test\/tap\/[^ ]*\.pl\) *(Wstat.*/\1/p' "$run/tap.log" | sort -u); do
      log="$tapdir/tmp_check/log/regress_log_$(basename "$t" .pl)"
      [ -f "$log" ] || continue
      note "tail of ${log#"$root"/}:"; tail -n 40 "$log"
    done
    note "node logs: .run/tap/tmp_check/log/"
    fail "TAP tests" "$([ -n "$files" ] && echo 0 || echo 1)"
  fi
fi

finish
