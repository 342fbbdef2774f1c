#!/usr/bin/env bash
# Makes sure what the project needs from the machine is there: Debian packages (ffmpeg, chromium for the
# editor's browser tests and render-code, espeak-ng for local voiceovers, zip for the Lambda layer commands that
# lambdas/build/readme.test.ts runs) and the local PostgreSQL, NATS
# (JetStream) and Redis. As root on Debian it installs/starts what is missing; otherwise it says how.
# Runs before `npm start` and `npm test`, and from .ci/run. Quiet when everything is already there.
set -euo pipefail

missing=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)
command -v zip >/dev/null 2>&1 || missing+=(zip)

can_root() { [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; }

if [ ${#missing[@]} -gt 0 ]; then
  if can_root; then
    echo "ensure-system: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "ensure-system: missing ${missing[*]}: install them (Debian: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 5432; then
  if can_root && command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "ensure-system: starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    for _ in $(seq 1 30); do port_open 5432 && break; sleep 1; done
  else
    echo "ensure-system: PostgreSQL is not listening on 127.0.0.1:5432; start it (pg_ctlcluster 15 main start)" >&2
    exit 1
  fi
fi

if ! port_open 4222; then
  if can_root && [ -x /usr/sbin/nats-server ]; then
    echo "ensure-system: starting nats-server with JetStream" >&2
    mkdir -p /var/lib/nats-server
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
      -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
    for _ in $(seq 1 30); do port_open 4222 && break; sleep 1; done
  else
    echo "ensure-system: NATS is not listening on 127.0.0.1:4222; start nats-server -js" >&2
    exit 1
  fi
fi

if ! port_open 6379; then
  if can_root && command -v redis-server >/dev/null 2>&1; then
    echo "ensure-system: starting Redis (the benchmark's BullMQ baseline)" >&2
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  else
    echo "ensure-system: Redis is not running on 127.0.0.1:6379 (needed only by npm run bench)" >&2
  fi
fi
