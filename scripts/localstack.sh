#!/usr/bin/env bash
# Run LocalStack's S3 (with real Object Lock COMPLIANCE enforcement) in host mode, without
# Docker, for the audit-trail integration tests.
#
# Usage: scripts/localstack.sh start  [PORT]   # default port 4566; waits until healthy
#        scripts/localstack.sh stop   [PORT]
#        scripts/localstack.sh status [PORT]   # exit 0 if running and healthy
#
# After `start`, point tests at it with OUTPOST_TEST_S3_ENDPOINT=http://127.0.0.1:PORT.
# State lives under target/localstack/PORT.{pid,log,volume}; each port is an independent
# instance, so parallel runs can use different ports. The data directory is a fresh temp dir
# per start (removed on stop): tests must never depend on data from an earlier run.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="$REPO_ROOT/target/localstack"
CMD="${1:-}"
PORT="${2:-4566}"
START_TIMEOUT_S="${LOCALSTACK_START_TIMEOUT:-90}"

if [[ ! "$PORT" =~ ^[0-9]{1,5}$ ]] || ((PORT < 1 || PORT > 65535)); then
  echo "localstack: invalid port '$PORT'" >&2
  exit 2
fi

PIDFILE="$STATE_DIR/$PORT.pid"
LOGFILE="$STATE_DIR/$PORT.log"
VOLFILE="$STATE_DIR/$PORT.volume"
HEALTH_URL="http://127.0.0.1:$PORT/_localstack/health"

usage() {
  sed -n '5,7p' "${BASH_SOURCE[0]}" | sed 's/^# //' >&2
  exit 2
}

pid_alive() {
  [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

# Healthy = the gateway answers and reports S3 as "available" (loaded lazily on first
# request) or "running"; anything else ("disabled", "error") means our SERVICES setting or
# the install is broken.
healthy() {
  local body
  body="$(curl -fsS --max-time 2 "$HEALTH_URL" 2>/dev/null)" || return 1
  [[ "$body" =~ \"s3\":\ *\"(available|running)\" ]]
}

start() {
  mkdir -p "$STATE_DIR"
  if pid_alive; then
    if healthy; then
      echo "localstack: already running on port $PORT (pid $(cat "$PIDFILE"))"
      return 0
    fi
    echo "localstack: pid $(cat "$PIDFILE") exists but is not healthy; restarting" >&2
    stop
  fi
  # Refuse to mistake some other process on the port for our server.
  if curl -fsS --max-time 1 -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null ||
    ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q .; then
    echo "localstack: port $PORT is already in use by another process" >&2
    return 1
  fi

  local venv
  venv="$("$REPO_ROOT/scripts/python-venv.sh")"
  local volume
  volume="$(mktemp -d -t outpost-localstack.XXXXXX)"
  echo "$volume" >"$VOLFILE"

  local t0=$SECONDS
  # setsid gives LocalStack its own process group so `stop` can take down any helpers it
  # forks without touching anything else. DNS_ADDRESS=0 disables LocalStack's DNS server
  # (we only need S3). Two "Unable to start DNS ... snicaddr" warnings still appear: the DNS
  # module fails to import against psutil 7 before it reads DNS_ADDRESS. They are harmless.
  # cd into the volume so nothing it writes relative to cwd lands in the repo.
  (
    cd "$volume"
    SERVICES=s3 \
      GATEWAY_LISTEN="127.0.0.1:$PORT" \
      DISABLE_EVENTS=1 \
      SKIP_SSL_CERT_DOWNLOAD=1 \
      DNS_ADDRESS=0 \
      LOCALSTACK_VOLUME_DIR="$volume" \
      exec setsid "$venv/bin/python" -m localstack.runtime.main
  ) >"$LOGFILE" 2>&1 </dev/null &
  echo $! >"$PIDFILE"

  while ((SECONDS - t0 < START_TIMEOUT_S)); do
    if ! pid_alive; then
      echo "localstack: process exited during startup; log tail ($LOGFILE):" >&2
      tail -n 40 "$LOGFILE" >&2 || true
      rm -f "$PIDFILE"
      return 1
    fi
    if healthy; then
      echo "localstack: S3 ready on http://127.0.0.1:$PORT (pid $(cat "$PIDFILE"), $((SECONDS - t0)) s)"
      return 0
    fi
    sleep 0.5
  done
  echo "localstack: not healthy after ${START_TIMEOUT_S} s; log tail ($LOGFILE):" >&2
  tail -n 40 "$LOGFILE" >&2 || true
  stop || true
  return 1
}

stop() {
  if ! [[ -f "$PIDFILE" ]]; then
    echo "localstack: not running on port $PORT"
    return 0
  fi
  local pid
  pid="$(cat "$PIDFILE")"
  if kill -0 "$pid" 2>/dev/null; then
    # The pid is the session/process-group leader (setsid exec'd in place), so signal the
    # group: LocalStack may have forked helpers.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$PIDFILE"
  if [[ -f "$VOLFILE" ]]; then
    local volume
    volume="$(cat "$VOLFILE")"
    # Only ever remove a directory this script created.
    [[ "$volume" == */outpost-localstack.* && -d "$volume" ]] && rm -rf -- "$volume"
    rm -f "$VOLFILE"
  fi
  echo "localstack: stopped (port $PORT)"
}

status() {
  if pid_alive && healthy; then
    echo "localstack: running on http://127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"
    return 0
  fi
  if pid_alive; then
    echo "localstack: pid $(cat "$PIDFILE") alive but not healthy (log: $LOGFILE)"
    return 1
  fi
  echo "localstack: not running on port $PORT"
  return 3
}

case "$CMD" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) usage ;;
esac
