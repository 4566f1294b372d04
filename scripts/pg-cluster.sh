#!/usr/bin/env bash
# Throwaway PostgreSQL 15 clusters for pgward's integration tests.
#
#   pg-cluster.sh start [DIR] [--port N] [--tls] [--certs-dir CERTS] [--owner-pid PID]
#   pg-cluster.sh stop DIR
#   pg-cluster.sh status DIR
#   pg-cluster.sh reap
#
# start: DIR must be absent or empty (default: a fresh `mktemp -d /tmp/pgward-cluster.XXXXXX`).
#   Listens on 127.0.0.1 only (a free port unless --port), Unix socket in DIR/sock. Prints one JSON
#   line on stdout: {"dir","port","host","socket_dir","tls","certs_dir","data_dir","log_file"}.
#   --tls turns on ssl with the server certificate of scripts/make-test-certs.sh (generated into
#   CERTS, default tests/.artifacts/certs; certs_dir in the JSON is that directory, which also holds
#   ca.crt, client.* and gateway.*). --owner-pid records the process that owns the cluster: `reap`
#   (also run at every start) stops clusters whose owner is gone, so a killed test run leaks nothing.
# Roles (database pgward_test, all granted ALL on schema public):
#   trust_user (trust), md5_user/md5pass (stored as md5, md5 auth), scram_user/scrampass,
#   ssl_only_user/sslpass (hostssl only), readonly/readonlypass (scram), postgres (trust).
# stop: pg_ctl stop -m fast (then immediate), removes DIR. status: JSON line, exit 0 if running, 3 if not.
set -euo pipefail

PROG=pg-cluster.sh
die() {
  echo "$PROG: error: $*" >&2
  exit 1
}
note() { echo "$PROG: $*" >&2; }

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
MARKER=.pgward-cluster
PG_OS_USER=postgres

find_bindir() {
  local d
  for d in "${PGWARD_PG_BINDIR:-}" /usr/lib/postgresql/15/bin "$(pg_config --bindir 2>/dev/null || true)"; do
    if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
      echo "$d"
      return 0
    fi
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"
    return 0
  fi
  return 1
}

BINDIR=$(find_bindir) || die "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; tried \$PGWARD_PG_BINDIR, /usr/lib/postgresql/15/bin, pg_config --bindir, PATH"
PSQL=$(command -v psql || true)
[ -n "$PSQL" ] || PSQL=$BINDIR/psql
[ -x "$PSQL" ] || die "psql not found"

# as_pg CMD...: run as the postgres OS user (PostgreSQL refuses to run as root).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$PG_OS_USER" -- "$@"
  else
    "$@"
  fi
}

json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

port_in_use() {
  ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && return 0
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
  return 1
}

# A random port below the ephemeral range (32768+) so outgoing connections cannot hold it.
pick_port() {
  local i p
  for i in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    port_in_use "$p" || {
      echo "$p"
      return 0
    }
  done
  return 1
}

check_dir() {
  local dir=$1
  [ -n "$dir" ] || die "DIR is required"
  [ -d "$dir" ] || die "$dir is not a directory"
  [ -f "$dir/$MARKER" ] || die "$dir is not a pgward test cluster (no $MARKER); refusing to touch it"
}

cluster_port() {
  sed -n 's/^port = \([0-9]*\)$/\1/p' "$1/data/pgward-cluster.conf" 2>/dev/null | head -n1
}

cmd_stop() {
  local dir=$1 pid
  check_dir "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -d "$dir/data" ] && as_pg "$BINDIR/pg_ctl" status -D "$dir/data" >/dev/null 2>&1; then
    if ! as_pg "$BINDIR/pg_ctl" stop -D "$dir/data" -m fast -w -t 20 >"$dir/stop.log" 2>&1; then
      note "fast shutdown of $dir failed ($(tr '\n' ' ' <"$dir/stop.log")); trying immediate"
      if ! as_pg "$BINDIR/pg_ctl" stop -D "$dir/data" -m immediate -w -t 20 >/dev/null 2>&1; then
        pid=$(head -n1 "$dir/data/postmaster.pid" 2>/dev/null || true)
        [[ "$pid" =~ ^[0-9]+$ ]] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ] && kill -KILL "$pid" 2>/dev/null
        sleep 0.5
        as_pg "$BINDIR/pg_ctl" status -D "$dir/data" >/dev/null 2>&1 &&
          die "could not stop the server in $dir/data; it is still running, DIR kept"
      fi
    fi
  fi
  rm -rf -- "$dir"
}

cmd_status() {
  local dir=$1 running=false rc=3
  check_dir "$dir"
  dir=$(cd "$dir" && pwd)
  if as_pg "$BINDIR/pg_ctl" status -D "$dir/data" >/dev/null 2>&1; then
    running=true
    rc=0
  fi
  local port
  port=$(cluster_port "$dir")
  printf '{"dir":%s,"port":%s,"running":%s}\n' "$(json_str "$dir")" "${port:-null}" "$running"
  return "$rc"
}

# Stop clusters whose recorded owner process no longer exists.
cmd_reap() {
  local d owner
  for d in /tmp/pgward-cluster.*; do
    [ -f "$d/$MARKER" ] && [ -f "$d/owner.pid" ] || continue
    owner=$(cat "$d/owner.pid" 2>/dev/null || true)
    [[ "$owner" =~ ^[0-9]+$ ]] || continue
    kill -0 "$owner" 2>/dev/null && continue
    note "reaping $d (owner pid $owner is gone)"
    (cmd_stop "$d") || note "could not reap $d"
  done
}

cmd_start() {
  local dir="" port="" tls=false certs_src="$REPO_DIR/tests/.artifacts/certs" owner="" fixed_port=false
  while [ $# -gt 0 ]; do
    case $1 in
      --port)
        [ $# -ge 2 ] && [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] && [ "$2" -le 65535 ] || die "--port needs a number 1..65535"
        port=$2
        fixed_port=true
        shift 2
        ;;
      --tls)
        tls=true
        shift
        ;;
      --certs-dir)
        [ $# -ge 2 ] || die "--certs-dir needs a directory"
        certs_src=$2
        shift 2
        ;;
      --owner-pid)
        [ $# -ge 2 ] && [[ "$2" =~ ^[0-9]+$ ]] || die "--owner-pid needs a pid"
        owner=$2
        shift 2
        ;;
      -*) die "unknown option $1" ;;
      *)
        [ -z "$dir" ] || die "unexpected argument $1"
        dir=$1
        shift
        ;;
    esac
  done

  if [ "$(id -u)" -eq 0 ]; then
    id "$PG_OS_USER" >/dev/null 2>&1 || die "running as root but there is no '$PG_OS_USER' OS user to run PostgreSQL as"
  fi
  cmd_reap || true

  if [ -z "$dir" ]; then
    dir=$(mktemp -d /tmp/pgward-cluster.XXXXXX) || die "mktemp failed"
  else
    mkdir -p "$dir" || die "cannot create $dir"
    [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
  fi
  dir=$(cd "$dir" && pwd)
  touch "$dir/$MARKER"
  [ -n "$owner" ] && echo "$owner" >"$dir/owner.pid"

  # From here on, any failure removes the half-made cluster.
  START_OK=false
  # shellcheck disable=SC2064
  trap "if [ \$START_OK != true ]; then (cmd_stop '$dir') >/dev/null 2>&1 || true; fi" EXIT

  local data=$dir/data sock=$dir/sock log=$dir/postgres.log tlsdir=$dir/tls
  mkdir -p "$sock"
  if [ "$(id -u)" -eq 0 ]; then chown -R "$PG_OS_USER:" "$dir"; fi
  chmod 0755 "$dir"
  as_pg touch "$log"

  if ! as_pg "$BINDIR/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C -N >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    die "initdb failed"
  fi

  if $tls; then
    "$SCRIPT_DIR/make-test-certs.sh" "$certs_src" || die "make-test-certs.sh $certs_src failed"
    certs_src=$(cd "$certs_src" && pwd)
    mkdir -p "$tlsdir"
    cp "$certs_src/server.crt" "$certs_src/server.key" "$certs_src/ca.crt" "$tlsdir/"
    if [ "$(id -u)" -eq 0 ]; then chown -R "$PG_OS_USER:" "$tlsdir"; fi
    chmod 0600 "$tlsdir/server.key"
  fi

  as_pg tee "$data/pg_hba.conf" >/dev/null <<'EOF'
# pgward test cluster; first match wins
local     all  postgres                    trust
hostnossl all  ssl_only_user  all          reject
hostssl   all  ssl_only_user  127.0.0.1/32 scram-sha-256
host      all  trust_user     127.0.0.1/32 trust
host      all  md5_user       127.0.0.1/32 md5
host      all  scram_user     127.0.0.1/32 scram-sha-256
host      all  postgres       127.0.0.1/32 trust
host      all  all            127.0.0.1/32 scram-sha-256
EOF
  echo "include_if_exists = 'pgward-cluster.conf'" | as_pg tee -a "$data/postgresql.conf" >/dev/null

  local attempt started=false
  for attempt in 1 2 3 4 5; do
    if ! $fixed_port; then port=$(pick_port) || die "no free port found"; fi
    {
      echo "port = $port"
      echo "listen_addresses = '127.0.0.1'"
      echo "unix_socket_directories = '$sock'"
      echo "shared_buffers = 32MB"
      echo "max_connections = ${PGWARD_CLUSTER_MAX_CONNECTIONS:-200}"
      echo "fsync = off"
      echo "synchronous_commit = off"
      echo "full_page_writes = off"
      echo "max_wal_size = 256MB"
      echo "log_connections = off"
      echo "password_encryption = 'scram-sha-256'"
      if $tls; then
        echo "ssl = on"
        echo "ssl_cert_file = '$tlsdir/server.crt'"
        echo "ssl_key_file = '$tlsdir/server.key'"
        echo "ssl_ca_file = '$tlsdir/ca.crt'"
      else
        echo "ssl = off"
      fi
    } | as_pg tee "$data/pgward-cluster.conf" >/dev/null
    : >"$log"
    if as_pg "$BINDIR/pg_ctl" start -D "$data" -l "$log" -w -t 30 >/dev/null 2>&1; then
      started=true
      break
    fi
    if ! $fixed_port && grep -q 'could not bind\|Address already in use' "$log"; then
      note "port $port was taken, retrying"
      continue
    fi
    break
  done
  if ! $started; then
    tail -n 30 "$log" >&2 || true
    die "postgres did not start (server log above); cluster $dir removed"
  fi

  local sql_err
  if ! sql_err=$("$PSQL" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U postgres -d postgres 2>&1 >/dev/null <<'EOF'
CREATE ROLE trust_user LOGIN;
SET password_encryption = 'md5';
CREATE ROLE md5_user LOGIN PASSWORD 'md5pass';
SET password_encryption = 'scram-sha-256';
CREATE ROLE scram_user LOGIN PASSWORD 'scrampass';
CREATE ROLE ssl_only_user LOGIN PASSWORD 'sslpass';
CREATE ROLE readonly LOGIN PASSWORD 'readonlypass';
CREATE DATABASE pgward_test OWNER postgres;
\connect pgward_test
GRANT ALL ON SCHEMA public TO trust_user, md5_user, scram_user, ssl_only_user, readonly;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
  GRANT ALL ON TABLES TO trust_user, md5_user, scram_user, ssl_only_user, readonly;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
  GRANT ALL ON SEQUENCES TO trust_user, md5_user, scram_user, ssl_only_user, readonly;
DO $$
BEGIN
  IF (SELECT rolpassword FROM pg_authid WHERE rolname = 'md5_user') NOT LIKE 'md5%' THEN
    RAISE EXCEPTION 'md5_user password is not stored as md5';
  END IF;
END $$;
EOF
  ); then
    echo "$sql_err" >&2
    die "creating roles and database pgward_test failed"
  fi

  START_OK=true
  trap - EXIT
  local certs_json=null
  $tls && certs_json=$(json_str "$certs_src")
  printf '{"dir":%s,"port":%s,"host":"127.0.0.1","socket_dir":%s,"tls":%s,"certs_dir":%s,"data_dir":%s,"log_file":%s}\n' \
    "$(json_str "$dir")" "$port" "$(json_str "$sock")" "$tls" "$certs_json" "$(json_str "$data")" "$(json_str "$log")"
}

[ $# -ge 1 ] || die "usage: $PROG start [DIR] [--port N] [--tls] [--certs-dir CERTS] [--owner-pid PID] | stop DIR | status DIR | reap"
cmd=$1
shift
case $cmd in
  start) cmd_start "$@" ;;
  stop)
    [ $# -eq 1 ] || die "usage: $PROG stop DIR"
    cmd_stop "$1"
    ;;
  status)
    [ $# -eq 1 ] || die "usage: $PROG status DIR"
    cmd_status "$1"
    ;;
  reap)
    [ $# -eq 0 ] || die "usage: $PROG reap"
    cmd_reap
    ;;
  *) die "unknown command '$cmd' (start|stop|status|reap)" ;;
esac
