#!/usr/bin/env bash
# GET of a 4 KiB page with wrk -t1 -c32: MicroHTTP inline, MicroHTTP offloaded, nginx static file,
# interleaved for ROUNDS rounds; prints req/s per round and httpbench's server CPU µs/request.
# Needs wrk and nginx (apt-get install -y wrk nginx) and a release build of httpbench.
set -euo pipefail
ROUNDS=${ROUNDS:-5} SECONDS_EACH=${SECONDS_EACH:-5} THREADS=${THREADS:-2}
BIN=${BIN:-.build/release/httpbench}
work=$(mktemp -d)
trap 'kill $(cat "$work"/nginx.pid) 2>/dev/null || true; exec 7>&- || true; rm -rf "$work"' EXIT

head -c 4096 /dev/urandom > "$work/page"
cat > "$work/nginx.conf" <<CONF
worker_processes $THREADS;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    server { listen 127.0.0.1:18080; location / { root $work; } }
}
CONF
nginx -c "$work/nginx.conf"

mkfifo "$work/in"
"$BIN" serve 0 "$THREADS" "$THREADS" < "$work/in" > "$work/out" &
exec 7>"$work/in"
sleep 0.5
port=$(grep -o '[0-9]*$' "$work/out")

rps() { wrk -t1 -c32 -d"${SECONDS_EACH}s" "$1" | awk '/Requests\/sec/ {print $2}'; }
for round in $(seq "$ROUNDS"); do
    echo mark idle >&7
    inline=$(rps "http://127.0.0.1:$port/inline"); echo "mark inline round $round" >&7
    offload=$(rps "http://127.0.0.1:$port/offload"); echo "mark offload round $round" >&7
    nginx=$(rps "http://127.0.0.1:18080/page")
    echo "round $round: inline $inline offload $offload nginx $nginx req/s"
done
exec 7>&-
sleep 0.5
grep -v idle "$work/out"
