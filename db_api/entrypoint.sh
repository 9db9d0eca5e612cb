#!/bin/sh
# Start Redis with the stack's config. The password comes from REDIS_PASSWORD and reaches
# redis-server on standard input (the trailing `-`), so it never shows on a command line.
# exec: redis-server is PID 1 and shuts down cleanly (saving its data) on SIGTERM.
set -eu
: "${REDIS_PASSWORD:?REDIS_PASSWORD must be set}"
exec redis-server /usr/local/etc/redis/redis.conf --dir /data --bind '*' '-::*' - <<EOF_CONFIG
requirepass "$REDIS_PASSWORD"
EOF_CONFIG
