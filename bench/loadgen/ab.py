#!/usr/bin/env python3
"""Server CPU per request of zramd builds, interleaved, driven by bench/loadgen: the
before/after measure of one change, which a loaded machine moves much less than req/s.

    python3 bench/loadgen/ab.py [--before OLD/zramd] --after .build/release/zramd \
        --loader .build/loadgen --corpus .corpus/pages-a.bin [--rounds 5] [--seconds 3] [--conns 16] \
        [--threads 2] [--memcached]

All servers run at once with the corpus loaded; each round runs a GET and a PUT run against
each in turn (order alternating) and divides the server's utime + stime by the requests done;
user and system time are shown apart (a change in zramd's own code moves the first), with
req/s, p50 and p99. `--threads N`: zramd's `--http-threads` (and memcached's `-t`).
`--memcached`: memcached (`get`/`set` of the same pages) runs beside them, and each zramd's
CPU per request is also given over memcached's, as a ratio of medians and as the median of
the per-round ratios.
"""
import argparse
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import PAGE, free_port, run_loadgen, start_zramd, stop  # noqa: E402
from peers.run import start_memcached  # noqa: E402


def cpu_times(pid):
    """utime and stime of `pid` (and its waited-for children), in seconds."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[13])) / tick, (int(fields[12]) + int(fields[14])) / tick


def run(args, proto, port, pid, mode, op="get"):
    r = run_loadgen(
        args.loader, proto=proto, port=port, keys=args.slots, values=args.corpus, mode=mode, conns=args.conns,
        server_pid=pid, op=op if mode == "run" else None, seconds=args.seconds if mode == "run" else None)
    if r["failed"]:
        raise RuntimeError(f"{r['failed']} failed requests: {r['first_error']}")
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before")
    ap.add_argument("--after", required=True)
    ap.add_argument("--loader", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memcached", action="store_true")
    args = ap.parse_args()
    args.slots = os.path.getsize(args.corpus) // PAGE
    work = tempfile.mkdtemp(prefix="zbench-ab-")
    servers = {}
    try:
        builds = ([("before", args.before)] if args.before else []) + [("after", args.after)]
        for name, binary in builds:
            home = os.path.join(work, name)
            os.makedirs(home)
            port = free_port()
            proc = start_zramd(
                binary, home, port, f"{max(64, args.slots * PAGE >> 20)}M", extra=("--http-threads", str(args.threads)))
            servers[name] = (proc, "http", port)
        if args.memcached:
            port = free_port()
            servers["memcached"] = (start_memcached(work, port, args.threads), "memcache", port)
        for proc, proto, port in servers.values():
            run(args, proto, port, proc.pid, "load")
        results = {(n, op): [] for n in servers for op in ("get", "put")}
        for round in range(args.rounds):
            order = list(servers.items()) if round % 2 == 0 else list(reversed(servers.items()))
            for op in ("get", "put"):
                for name, (proc, proto, port) in order:
                    user0, system0 = cpu_times(proc.pid)
                    r = run(args, proto, port, proc.pid, "run", op)
                    user1, system1 = cpu_times(proc.pid)
                    n = r["requests"]
                    results[(name, op)].append(
                        (r["server_cpu_us_per_req"], r["req_s"], (user1 - user0) * 1e6 / n, (system1 - system0) * 1e6 / n,
                         r["p50_us"], r["p99_us"]))
    finally:
        for proc, _, _ in servers.values():
            stop(proc)
    for (name, op), runs in sorted(results.items()):
        us = [r[0] for r in runs]
        print(f"{op} {name:6} server µs/request median {statistics.median(us):6.2f} "
              f"({', '.join(f'{x:.1f}' for x in us)}); user {statistics.median(r[2] for r in runs):5.2f} "
              f"system {statistics.median(r[3] for r in runs):5.2f}; req/s median {statistics.median(r[1] for r in runs):8.0f}; "
              f"p50 {statistics.median(r[4] for r in runs):.0f} µs, p99 {statistics.median(r[5] for r in runs):.0f} µs")
    if args.memcached:
        for (name, op), runs in sorted(results.items()):
            if name == "memcached":
                continue
            base = results[("memcached", op)]
            ratio = statistics.median(r[0] for r in runs) / statistics.median(r[0] for r in base)
            per_round = statistics.median(z[0] / m[0] for z, m in zip(runs, base))
            print(f"{op} {name:6} CPU per request over memcached's: {ratio:.3f} (median of per-round ratios {per_round:.3f})")


if __name__ == "__main__":
    main()
