#!/usr/bin/env bash
# Real services for the test suite, on 127.0.0.1 only: PostgreSQL 15, Redis and an S3 server
# (S3_IMPL=ceph: Ceph RGW, real SigV4 auth — the default; S3_IMPL=moto: moto_server, a fast
# emulator that accepts any credentials). Source it, then:
#
#     . infra/ci/services.sh; install_service_packages; start_services; check_services
#
# start_services records every PID it starts and stops exactly those on EXIT (it sets the EXIT
# trap). Ports are free ones picked at start unless PG_PORT / REDIS_PORT / S3_PORT / CEPH_MON_PORT
# are set, so several runs can share a machine. It exports, for tests/conftest.py::service_env:
#   ORGMEM_TEST_DATABASE_URL   postgresql+psycopg://postgres@127.0.0.1:PORT/orgmem_test (superuser:
#                              tests may CREATE DATABASE)
#   ORGMEM_TEST_PG_ADMIN_URL   same server, database `postgres`
#   ORGMEM_TEST_REDIS_URL      redis://127.0.0.1:PORT/0
#   ORGMEM_TEST_S3_ENDPOINT_URL, ORGMEM_TEST_S3_ACCESS_KEY_ID, ORGMEM_TEST_S3_SECRET_ACCESS_KEY,
#   ORGMEM_TEST_S3_IMPL (ceph | moto)
# Measured gotchas kept here (see the project notes): PostgreSQL refuses root, so initdb/pg_ctl run
# as user `postgres`, which must own the data dir and the log's dir; radosgw needs
# `ms mon client mode = crc` (else it retries auth for 300 s); `mon data avail crit = 0` (else a
# nearly full disk blocks writes); the OSD uses memstore (nothing on disk, fast start).
# Written to be sourced by scripts running under `set -euo pipefail`.

S3_IMPL=${S3_IMPL:-ceph}
VENV=${VENV:-.venv}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
ORGMEM_SVC_DIR=${ORGMEM_SVC_DIR:-}
CEPH_PIDS=${CEPH_PIDS:-}
MOTO_PID=${MOTO_PID:-}
REDIS_PID=${REDIS_PID:-}
PG_PID=${PG_PID:-}

_svc_log() { printf '[services %s] %s\n' "$(date +%T)" "$*" >&2; }

# A TCP port nobody listens on now (the kernel picks it; tiny race accepted for tests).
_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Wait until process $1 has exited (or is a zombie); kill -9 after 10 s.
_wait_gone() {
  local p=$1 i
  for i in $(seq 1 100); do
    kill -0 "$p" 2>/dev/null || return 0
    [ "$(ps -o stat= -p "$p" 2>/dev/null | cut -c1)" = Z ] && return 0
    sleep 0.1
  done
  kill -9 "$p" 2>/dev/null || true
}

# Retry "$@" until it succeeds, at most $1 times with 0.25 s pauses.
_until() {
  local n=$1 i; shift
  for i in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  return 1
}

# Print the PID in pidfile $1 once the daemon has written it (up to 15 s).
_pid_from() {
  local f=$1 i
  for i in $(seq 1 60); do [ -s "$f" ] && { head -1 "$f"; return 0; }; sleep 0.25; done
  _svc_log "no pid file $f"; return 1
}

_missing_binaries() {
  local missing=""
  [ -x "$PGBIN/postgres" ] || missing="$missing postgresql-15"
  command -v psql >/dev/null || missing="$missing postgresql-client-15"
  command -v redis-server >/dev/null || missing="$missing redis-server"
  command -v chromium >/dev/null || missing="$missing chromium"  # the console's browser tests
  if [ "$S3_IMPL" = ceph ]; then
    command -v radosgw >/dev/null || missing="$missing radosgw"
    command -v ceph-mon >/dev/null || missing="$missing ceph-mon"
    command -v ceph-osd >/dev/null || missing="$missing ceph-osd"
  fi
  echo "$missing"
}

# Idempotent: apt runs only when a needed binary is missing.
install_service_packages() {
  local missing log
  missing=$(_missing_binaries)
  if [ -z "$missing" ]; then _svc_log "service packages present, apt skipped"; return 0; fi
  if [ "$S3_IMPL" = moto ] && [ ! -x "$VENV/bin/moto_server" ]; then
    _svc_log "S3_IMPL=moto needs $VENV/bin/moto_server: pip install 'moto[s3,server]'"; return 1
  fi
  _svc_log "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  log=$(mktemp /tmp/orgmem-apt.XXXXXX.log)
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; } >"$log" 2>&1; then
    tail -20 "$log" >&2; _svc_log "apt failed (log: $log)"; return 1
  fi
  rm -f "$log"
}

start_postgres() {
  PG_PORT=${PG_PORT:-$(_free_port)}
  id postgres >/dev/null 2>&1 || useradd --system --home-dir "$ORGMEM_SVC_DIR" --shell /usr/sbin/nologin postgres
  install -d -o postgres -g postgres "$ORGMEM_SVC_DIR/pg"
  runuser -u postgres -- "$PGBIN/initdb" -D "$ORGMEM_SVC_DIR/pg/data" -U postgres -A trust --no-sync \
    -E UTF8 --locale=C.UTF-8 >"$ORGMEM_SVC_DIR/initdb.log"
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$ORGMEM_SVC_DIR/pg/data" -l "$ORGMEM_SVC_DIR/pg/pg.log" -w -t 60 \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $ORGMEM_SVC_DIR/pg -c fsync=off \
-c synchronous_commit=off -c full_page_writes=off" start >/dev/null
  PG_PID=$(head -1 "$ORGMEM_SVC_DIR/pg/data/postmaster.pid")
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qc 'CREATE DATABASE orgmem_test'
  export ORGMEM_TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/orgmem_test"
  export ORGMEM_TEST_PG_ADMIN_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/postgres"
  _svc_log "postgres pid $PG_PID on 127.0.0.1:$PG_PORT"
}

start_redis() {
  REDIS_PORT=${REDIS_PORT:-$(_free_port)}
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --dir "$ORGMEM_SVC_DIR" \
    --pidfile "$ORGMEM_SVC_DIR/redis.pid" --logfile "$ORGMEM_SVC_DIR/redis.log" --save '' --appendonly no
  _until 200 sh -c "redis-cli -p $REDIS_PORT ping | grep -q PONG" || { _svc_log "redis did not answer"; return 1; }
  REDIS_PID=$(cat "$ORGMEM_SVC_DIR/redis.pid")
  export ORGMEM_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
  _svc_log "redis pid $REDIS_PID on 127.0.0.1:$REDIS_PORT"
}

_write_ceph_conf() {
  local c=$1 fsid=$2
  cat >"$c/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$CEPH_MON_PORT
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms client mode = crc
ms bind ipv6 = false
keyring = /dev/null
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = 2147483648
run dir = $c/run
log file = $c/log/\$name.log
admin socket = $c/run/\$name.asok
pid file = $c/run/\$name.pid
[mon.a]
mon data = $c/mon.a
[osd]
osd data = $c/osd.\$id
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$S3_PORT
EOF
}

# One mon + one memstore OSD + radosgw. Daemons talk without auth; S3 clients still need SigV4.
start_s3_ceph() {
  local c="$ORGMEM_SVC_DIR/ceph" fsid id
  CEPH_MON_PORT=${CEPH_MON_PORT:-$(_free_port)}
  fsid=$(cat /proc/sys/kernel/random/uuid)
  mkdir -p "$c"/{run,log,mon.a}
  _write_ceph_conf "$c" "$fsid"
  monmaptool --create --addv a "[v2:127.0.0.1:$CEPH_MON_PORT]" --fsid "$fsid" "$c/monmap" >/dev/null
  ceph-mon -c "$c/ceph.conf" --mkfs -i a --monmap "$c/monmap"
  ceph-mon -c "$c/ceph.conf" -i a
  CEPH_PIDS="$(_pid_from "$c/run/mon.a.pid")"
  id=$(timeout 30 ceph -c "$c/ceph.conf" osd create)
  mkdir -p "$c/osd.$id"
  ceph-osd -c "$c/ceph.conf" -i "$id" --mkfs 2>/dev/null
  ceph-osd -c "$c/ceph.conf" -i "$id" 2>/dev/null
  CEPH_PIDS="$(_pid_from "$c/run/osd.$id.pid") $CEPH_PIDS"
  radosgw -c "$c/ceph.conf" -n client.rgw.a
  CEPH_PIDS="$(_pid_from "$c/run/client.rgw.a.pid") $CEPH_PIDS"
  _until 240 curl -sf -o /dev/null "http://127.0.0.1:$S3_PORT/" || { _svc_log "radosgw did not answer"; return 1; }
  radosgw-admin -c "$c/ceph.conf" user create --uid=orgmem-ci --display-name="orgmem CI" \
    --access-key=ORGMEMCIACCESSKEY --secret=ORGMEMCISECRETKEY123 >/dev/null
  export ORGMEM_TEST_S3_ACCESS_KEY_ID=ORGMEMCIACCESSKEY ORGMEM_TEST_S3_SECRET_ACCESS_KEY=ORGMEMCISECRETKEY123
  _svc_log "ceph rgw on 127.0.0.1:$S3_PORT (pids $CEPH_PIDS)"
}

start_s3_moto() {
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$ORGMEM_SVC_DIR/moto.log" 2>&1 &
  MOTO_PID=$!
  _until 200 curl -sf -o /dev/null "http://127.0.0.1:$S3_PORT/moto-api/" || { _svc_log "moto did not answer"; return 1; }
  export ORGMEM_TEST_S3_ACCESS_KEY_ID=testing ORGMEM_TEST_S3_SECRET_ACCESS_KEY=testing
  _svc_log "moto pid $MOTO_PID on 127.0.0.1:$S3_PORT"
}

start_services() {
  case "$S3_IMPL" in ceph|moto) ;; *) _svc_log "unknown S3_IMPL=$S3_IMPL (ceph or moto)"; return 1;; esac
  trap stop_services EXIT
  ORGMEM_SVC_DIR=$(mktemp -d /tmp/orgmem-svc.XXXXXX)
  chmod 755 "$ORGMEM_SVC_DIR"   # the postgres user must traverse it
  S3_PORT=${S3_PORT:-$(_free_port)}
  start_postgres
  start_redis
  "start_s3_$S3_IMPL"
  export ORGMEM_TEST_S3_ENDPOINT_URL="http://127.0.0.1:$S3_PORT" ORGMEM_TEST_S3_IMPL="$S3_IMPL"
}

# A real round trip on each service (S3: put/get, and a wrong secret must be refused).
check_services() {
  "$VENV/bin/python" tests/services_check.py
}

# Stops only the PIDs recorded above; safe to call twice.
stop_services() {
  local p
  for p in $CEPH_PIDS $MOTO_PID; do kill "$p" 2>/dev/null && _wait_gone "$p"; done
  if [ -n "$REDIS_PID" ]; then
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || kill "$REDIS_PID" 2>/dev/null || true
    _wait_gone "$REDIS_PID"
  fi
  if [ -n "$PG_PID" ]; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$ORGMEM_SVC_DIR/pg/data" -m fast -w stop >/dev/null \
      || kill "$PG_PID" 2>/dev/null || true
  fi
  CEPH_PIDS="" MOTO_PID="" REDIS_PID="" PG_PID=""
  if [ -n "$ORGMEM_SVC_DIR" ]; then rm -rf "$ORGMEM_SVC_DIR"; fi
  ORGMEM_SVC_DIR=""
}
