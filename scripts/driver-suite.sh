#!/usr/bin/env bash
# Runs real drivers' own upstream test suites twice against the same PostgreSQL: directly, and
# through pgward (dist/cli.js) with the allow-all fixture bundle. Both runs must give the same set
# of passed / failed / skipped test names (scripts/driver-suite-compare.js compares them).
#
#   scripts/driver-suite.sh [--report-only] [DRIVER...]
#
# Drivers (versions pinned below; the *_test.go files ship in the Go modules, fetched with
# `go mod download` through the Go module proxy, dependencies too):
#   libpq-go  github.com/lib/pq: every top-level test in its own process (see libpq_run)
#   pgx       github.com/jackc/pgx/v5: `go test -json ./...`, PGX_TEST_DATABASE set (the other
#             PGX_TEST_* connection strings unset: those tests skip themselves, in both runs)
# Default: every driver. --report-only prints the comparison but exits 0 when results differ.
#
# Environment: PGWARD_PG_HOST / PGWARD_PG_PORT (default 127.0.0.1:5432, superuser postgres, trust
# auth), PGWARD_DRIVER_OUT (default tests/.artifacts/drivers: go test -json streams, gateway log,
# the comparison), GO (default go from /usr/local/go/bin).
#
# What the suite needs on the server is created here (idempotent): the `pqgo` superuser role and
# database lib/pq's tests default to (PGUSER=pqgo, PGDATABASE=pqgo), and the roles its auth tests
# name (pqgossl, pqgosslcert, pqgopassword, pqgoscram, pqgomd5). The runs are sequential: the suite's
# TestMain fails when connections with application_name=pqgo are still open at its end, so two runs
# must not overlap, and the database is recreated before each run so both start from the same state.
set -euo pipefail

PROG=driver-suite
die() {
  echo "$PROG: error: $*" >&2
  exit 1
}
note() { echo "$PROG: $*" >&2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="/usr/local/go/bin:$PATH"
GO="${GO:-go}"
PG_HOST="${PGWARD_PG_HOST:-127.0.0.1}"
PG_PORT="${PGWARD_PG_PORT:-5432}"
OUT="${PGWARD_DRIVER_OUT:-$ROOT/tests/.artifacts/drivers}"
ALLOW_ALL_DIR="$ROOT/tests/fixtures/bundles/allow-all"

# Pinned upstream suites.
LIBPQ_MODULE=github.com/lib/pq
LIBPQ_VERSION=v1.12.3
PGX_MODULE=github.com/jackc/pgx/v5
PGX_VERSION=v5.13.0
# Upper bound for one run of the pgx suite (about 4 minutes directly on a busy 2-core machine).
PGX_TIMEOUT=20m
# Upper bound for one top-level test (a hang through pgward ends there, counted as a failure).
TEST_TIMEOUT=60s

REPORT_ONLY=0
DRIVERS=()
for a in "$@"; do
  case "$a" in
    --report-only) REPORT_ONLY=1 ;;
    -h | --help)
      sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    libpq-go | pgx) DRIVERS+=("$a") ;;
    *) die "unknown argument '$a' (drivers: libpq-go, pgx)" ;;
  esac
done
[[ ${#DRIVERS[@]} -gt 0 ]] || DRIVERS=(libpq-go pgx)

command -v "$GO" >/dev/null || die "go not found (expected in /usr/local/go/bin)"
command -v psql >/dev/null || die "psql not found (scripts/system-deps.sh installs it)"
[[ -f "$ROOT/dist/cli.js" ]] || die "dist/cli.js missing: run 'make build' first"
mkdir -p "$OUT"

psql_admin() {
  PGCONNECT_TIMEOUT=10 psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres "$@"
}

GW_PID=""
WORK=""
cleanup() {
  if [[ -n "$GW_PID" ]] && kill -0 "$GW_PID" 2>/dev/null; then
    kill -TERM "$GW_PID" 2>/dev/null || true
    wait "$GW_PID" 2>/dev/null || true
  fi
  if [[ -n "$WORK" && -d "$WORK" ]]; then
    chmod -R u+w "$WORK" 2>/dev/null || true
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
WORK="$(mktemp -d /tmp/pgward-drivers.XXXXXX)"

# Starts pgward in front of $PG_HOST:$PG_PORT with the allow-all bundle on a free port; sets GW_PORT.
start_gateway() {
  local log="$1" bundle="$WORK/allow-all.tar.gz" cfg="$WORK/pgward.yaml"
  [[ -f "$bundle" ]] || "$ROOT/scripts/build-policy.sh" "$ALLOW_ALL_DIR" "$bundle" >/dev/null
  cat >"$cfg" <<EOF
listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
upstream:
  address: $PG_HOST:$PG_PORT
policy:
  bundle: $bundle
  watch: false
log:
  level: info
audit:
  sink: none
EOF
  : >"$log"
  node "$ROOT/dist/cli.js" serve --config "$cfg" >"$log" 2>&1 &
  GW_PID=$!
  local i line
  for ((i = 0; i < 300; i++)); do
    line="$(grep -m1 '"msg":"pgward listening"' "$log" || true)"
    if [[ -n "$line" ]]; then
      GW_PORT="$(sed -E 's/.*"listen":"[^"]*:([0-9]+)".*/\1/' <<<"$line")"
      [[ "$GW_PORT" =~ ^[0-9]+$ ]] || die "cannot read the gateway's port from: $line"
      # lib/pq's tests skip parts of themselves on the ports of pgbouncer, pgpool and cockroach.
      case "$GW_PORT" in 6432 | 7432 | 26257) die "the gateway got port $GW_PORT, which lib/pq's tests treat specially; run again" ;; esac
      return 0
    fi
    kill -0 "$GW_PID" 2>/dev/null || die "gateway exited: $(tail -5 "$log")"
    sleep 0.1
  done
  die "gateway did not start within 30 s: $(tail -5 "$log")"
}

stop_gateway() {
  kill -TERM "$GW_PID" 2>/dev/null || true
  wait "$GW_PID" 2>/dev/null || true
  GW_PID=""
}

# Copies Go module $1 at version $2 (fetched through the Go module proxy into the read-only module
# cache) into $WORK/$3, writable.
go_module_fetch() {
  local module="$1" version="$2" dest="$WORK/$3" json dir
  json="$(cd "$WORK" && GOFLAGS=-mod=mod "$GO" mod download -json "$module@$version")" ||
    die "go mod download $module@$version failed"
  dir="$(sed -nE 's/^\s*"Dir": "(.*)",?$/\1/p' <<<"$json")"
  [[ -d "$dir" ]] || die "no module directory in: $json"
  cp -R "$dir" "$dest"
  chmod -R u+w "$dest"
}

# ---- lib/pq -------------------------------------------------------------------------------------

libpq_setup_server() {
  psql_admin <<'SQL'
DO $$
DECLARE r text;
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pqgo') THEN
    CREATE ROLE pqgo LOGIN SUPERUSER;
  END IF;
  FOREACH r IN ARRAY ARRAY['pqgossl', 'pqgosslcert', 'pqgopassword', 'pqgoscram', 'pqgomd5'] LOOP
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I LOGIN NOCREATEDB NOCREATEROLE NOSUPERUSER PASSWORD %L', r, 'wordpass');
    END IF;
  END LOOP;
END $$;
SQL
}

libpq_recreate_db() {
  psql_admin -c 'DROP DATABASE IF EXISTS pqgo WITH (FORCE)' -c 'CREATE DATABASE pqgo OWNER pqgo'
}

# Copies the module's sources (read-only in the module cache) into $WORK/libpq.
libpq_fetch() { go_module_fetch "$LIBPQ_MODULE" "$LIBPQ_VERSION" libpq; }

# Compiles one test binary per package of the copied module into $WORK/libpq-bin (pkg dir -> bin).
libpq_compile() {
  local pkg dir bin
  mkdir -p "$WORK/libpq-bin"
  : >"$WORK/libpq-bin/list"
  while IFS=$'\t' read -r pkg dir; do
    bin="$WORK/libpq-bin/$(tr '/' '_' <<<"$pkg").test"
    (cd "$dir" && "$GO" test -c -o "$bin" .) >/dev/null || die "lib/pq: cannot compile the tests of $pkg"
    [[ -x "$bin" ]] && printf '%s\t%s\t%s\n' "$pkg" "$dir" "$bin" >>"$WORK/libpq-bin/list"
  done < <(cd "$WORK/libpq" && "$GO" list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{"\t"}}{{.Dir}}{{end}}' ./...)
}

# One run of the lib/pq suite against host:port; writes test2json events to $3. Every top-level test
# (and example, and fuzz seed corpus) runs in its own process, labelled "<package>:<Test>", so a
# panic or a hang in one test (seen through pgward) cannot hide the results of the others, and the
# suite's TestMain check (no connection left open) is judged per test.
libpq_run() {
  local host="$1" port="$2" out="$3" only="${4:-}" start end pkg dir bin name
  libpq_recreate_db
  : >"$out"
  : >"$out.stderr"
  start=$(date +%s)
  while IFS=$'\t' read -r pkg dir bin; do
    while read -r name; do
      [[ "$name" =~ ^(Test|Example|Fuzz) ]] || continue
      if [[ -n "$only" ]] && ! grep -qxF "$pkg"$'\t'"$name" "$only"; then continue; fi
      (cd "$dir" && env -u PGPASSWORD -u PGSERVICE -u PGSSLMODE -u PGOPTIONS \
        PGHOST="$host" PGPORT="$port" PGUSER=pqgo PGDATABASE=pqgo PGSSLMODE=disable \
        timeout -k 5 "$TEST_TIMEOUT" "$GO" tool test2json -p "$pkg:$name" "$bin" -test.v=test2json \
        -test.count=1 -test.run "^${name}\$" -test.timeout "$TEST_TIMEOUT" >>"$out" 2>>"$out.stderr") || true
    done < <(cd "$dir" && PGHOST="$host" PGPORT="$port" PGUSER=pqgo PGDATABASE=pqgo PGSSLMODE=disable \
      "$bin" -test.list '.*' 2>/dev/null | sort)
  done <"$WORK/libpq-bin/list"
  end=$(date +%s)
  note "lib/pq $LIBPQ_VERSION against $host:$port: $((end - start)) s"
  echo "$((end - start))" >"$out.seconds"
}

# Runs suite $1 (libpq or pgx: the <name>_run function) directly and through pgward, compares, and
# runs the tests that differed once more both ways (upstream suites have timing-sensitive tests
# that a loaded machine makes flaky); a difference counts only when it shows in both attempts.
run_both_and_compare() {
  local run="$1" file="$2" label="$3" rc=0
  "$run" "$PG_HOST" "$PG_PORT" "$OUT/$file.direct.json"
  start_gateway "$OUT/$file.gateway.log"
  "$run" 127.0.0.1 "$GW_PORT" "$OUT/$file.pgward.json"
  node "$ROOT/scripts/driver-suite-compare.js" --name "$label" --differing-out "$OUT/$file.differing" \
    "$OUT/$file.direct.json" "$OUT/$file.pgward.json" >/dev/null || rc=$?
  [[ $rc -le 1 ]] || die "$label: cannot compare (see $OUT/$file.*.json)"
  local again=()
  if [[ -s "$OUT/$file.differing" ]]; then
    note "$label: $(wc -l <"$OUT/$file.differing") tests differ; running them again both ways"
    "$run" "$PG_HOST" "$PG_PORT" "$OUT/$file.direct.rerun.json" "$OUT/$file.differing"
    "$run" 127.0.0.1 "$GW_PORT" "$OUT/$file.pgward.rerun.json" "$OUT/$file.differing"
    again=(--rerun "$OUT/$file.direct.rerun.json" "$OUT/$file.pgward.rerun.json")
  fi
  stop_gateway
  mkdir -p "$ROOT/.tmp/test-results"
  node "$ROOT/scripts/driver-suite-compare.js" --name "$label" "${again[@]}" \
    --results "$ROOT/.tmp/test-results/driver-$file.json" "$OUT/$file.direct.json" "$OUT/$file.pgward.json" | tee "$OUT/$file.comparison.txt"
  return "${PIPESTATUS[0]}"
}

run_libpq() {
  note "lib/pq $LIBPQ_VERSION: fetching through the Go module proxy"
  libpq_fetch
  libpq_setup_server
  libpq_compile
  local rc=0
  run_both_and_compare libpq_run libpq-go "lib/pq $LIBPQ_VERSION" || rc=$?
  psql_admin -c 'DROP DATABASE IF EXISTS pqgo WITH (FORCE)'
  return $rc
}

# ---- pgx ---------------------------------------------------------------------------------------

pgx_recreate_db() {
  psql_admin -c 'DROP DATABASE IF EXISTS pgx_test WITH (FORCE)' -c 'CREATE DATABASE pgx_test'
  # What pgx's testsetup/postgresql_setup.sql creates that the tests run here use.
  PGCONNECT_TIMEOUT=10 psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U postgres -d pgx_test \
    -c 'CREATE EXTENSION hstore' -c 'CREATE EXTENSION ltree' -c 'CREATE DOMAIN uint64 AS numeric(20,0)'
}

# Copies the module (read-only in the module cache) into $WORK/pgx, fetches its dependencies and
# compiles every test binary once, so that the two runs time the tests and not the compiler.
pgx_fetch() {
  go_module_fetch "$PGX_MODULE" "$PGX_VERSION" pgx
  (cd "$WORK/pgx" && "$GO" mod download && "$GO" test -count=1 -run '^$' -exec /bin/true ./... >/dev/null) ||
    die "pgx: cannot fetch the dependencies or compile the tests"
}

# One run of the pgx suite against host:port, go test -json into $3; with $4 (lines
# "package<TAB>Test"), only those tests.
pgx_run() {
  local host="$1" port="$2" out="$3" only="${4:-}" start end rc=0 pkg targets=(./...)
  local runs=(-run '.')
  pgx_recreate_db
  : >"$out.stderr"
  start=$(date +%s)
  if [[ -n "$only" ]]; then
    : >"$out"
    while read -r pkg; do
      (cd "$WORK/pgx" && pgx_go_test "$host" "$port" -run "^($(awk -F'\t' -v p="$pkg" '$1 == p { print $2 }' "$only" | paste -sd'|'))\$" "$pkg" >>"$out" 2>>"$out.stderr") || rc=$?
    done < <(cut -f1 "$only" | sort -u)
  else
    (cd "$WORK/pgx" && pgx_go_test "$host" "$port" "${runs[@]}" "${targets[@]}" >"$out" 2>"$out.stderr") || rc=$?
  fi
  end=$(date +%s)
  note "pgx $PGX_VERSION against $host:$port: go test exit $rc, $((end - start)) s"
  echo "$((end - start))" >"$out.seconds"
}

# go test -json of the pgx suite against host:port ($1 $2); the rest are go test arguments.
pgx_go_test() {
  local host="$1" port="$2"
  shift 2
  env $(env | sed -n 's/^\(PGX_[A-Z_]*\)=.*/-u \1/p') -u PGSSLMODE \
    PGX_TEST_DATABASE="host=$host port=$port user=postgres dbname=pgx_test sslmode=disable" \
    "$GO" test -json -count=1 -p 1 -timeout "$PGX_TIMEOUT" "$@"
}

run_pgx() {
  note "pgx $PGX_VERSION: fetching through the Go module proxy"
  pgx_fetch
  local rc=0
  run_both_and_compare pgx_run pgx "pgx $PGX_VERSION" || rc=$?
  psql_admin -c 'DROP DATABASE IF EXISTS pgx_test WITH (FORCE)'
  return $rc
}

status=0
for d in "${DRIVERS[@]}"; do
  case "$d" in
    libpq-go) run_libpq || status=1 ;;
    pgx) run_pgx || status=1 ;;
  esac
done
if [[ $status -ne 0 && $REPORT_ONLY -eq 1 ]]; then
  note "results differ (see $OUT); --report-only, so exit 0"
  exit 0
fi
exit $status
