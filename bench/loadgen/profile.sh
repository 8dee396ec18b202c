#!/usr/bin/env bash
# Where zramd's server spends its CPU during single-page GETs: zramd on a free loopback port with
# the corpus stored (bench/loadgen --mode load), a closed-loop GET run of bench/loadgen, and
# `perf record -g -p PID` on the server for the middle of that run; then perf report.
#
#   bench/loadgen/profile.sh ZRAMD LOADGEN CORPUS [OUT]      (make profile-get)
#
# Environment: PROFILE_SECONDS (loader run, default 12; perf records 2 s less, from 1 s in),
# PROFILE_CONNS (default 64), PROFILE_OP (get or put, default get).
# OUT (default profile-get.txt): the loader's JSON, perf report by DSO, the flat list of symbols
# (--no-children --percent-limit 1) and the same with call graphs. Prints the flat list.
set -euo pipefail
zramd=$(realpath "$1") loader=$(realpath "$2") corpus=$(realpath "$3") out=${4:-profile-get.txt}
seconds=${PROFILE_SECONDS:-12} conns=${PROFILE_CONNS:-64} op=${PROFILE_OP:-get}
command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)" >&2; exit 1; }

work=$(mktemp -d /tmp/zprofile-XXXXXX)
zpid="" lpid=""
cleanup() {
  [ -n "$lpid" ] && kill "$lpid" 2>/dev/null || true
  if [ -n "$zpid" ]; then kill "$zpid" 2>/dev/null || true; wait "$zpid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

pages=$(( $(stat -c %s "$corpus") / 4096 ))
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$zramd" --listen "127.0.0.1:$port" --disksize $((pages * 4096)) --data-dir "$work/data" 2>"$work/zramd.log" &
zpid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
"$loader" --proto http --port "$port" --keys "$pages" --values "$corpus" --mode load --conns 16 >"$work/load.json"

"$loader" --proto http --port "$port" --keys "$pages" --values "$corpus" --op "$op" --conns "$conns" \
  --seconds "$seconds" --server-pid "$zpid" >"$work/run.json" &
lpid=$!
sleep 1
if ! perf record -g -o "$work/perf.data" -p "$zpid" -- sleep $((seconds - 2)) 2>"$work/perf.err"; then
  cat "$work/perf.err" >&2
  echo "perf record failed; kernel.perf_event_paranoid = $(cat /proc/sys/kernel/perf_event_paranoid)" \
       "(as root, or with it at 1 or lower, perf can attach to the server)" >&2
  exit 1
fi
wait "$lpid"
lpid=""

{
  echo "# zramd $op profile: perf record -g -p <zramd pid> for $((seconds - 2)) s of a $seconds s bench/loadgen run"
  echo "# ($conns connections, closed loop, uniform keys over $pages pages); loader result:"
  cat "$work/run.json"
  echo
  echo "## perf report --no-children --sort dso --stdio"
  perf report -i "$work/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep -v '^$'
  echo
  echo "## perf report --no-children --percent-limit 1 --stdio -g none"
  perf report -i "$work/perf.data" --no-children --percent-limit 1 --stdio -g none 2>/dev/null | grep -v '^$'
  echo
  echo "## perf report --no-children --percent-limit 1 --stdio (call graphs)"
  perf report -i "$work/perf.data" --no-children --percent-limit 1 --stdio 2>/dev/null
} >"$out"
sed -n '/^## perf report --no-children --percent-limit 1 --stdio -g none/,/^## perf report --no-children --percent-limit 1 --stdio (call/p' "$out" \
  | grep -E '^ +[0-9.]+%' | head -40
echo "full report: $out"
