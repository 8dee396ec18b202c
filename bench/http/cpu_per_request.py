"""Server CPU time per request of two zramd builds, interleaved: a comparison that a loaded
machine moves much less than req/s.

    python3 bench/http/cpu_per_request.py --before OLD/zramd --after .build/release/zramd \
        --corpus .corpus/pages-a.bin [--rounds 4] [--seconds 3]

Both servers run at once with the corpus loaded; each round runs `wrk -t2 -c16` with get.lua
and put.lua against each in turn and divides the server's utime + stime by the requests done.
"""
import argparse
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import PAGE, free_port, load_zramd, start_zramd, stop, wrk, wrk_env, write_sample_files  # noqa: E402


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--seconds", type=int, default=3)
    args = ap.parse_args()
    corpus = open(args.corpus, "rb").read()
    slots = len(corpus) // PAGE
    work = tempfile.mkdtemp(prefix="zbench-cpu-")
    write_sample_files(work, corpus, slots)
    env = wrk_env(work, slots)
    servers = {}
    try:
        for name, binary in (("before", args.before), ("after", args.after)):
            port = free_port()
            home = os.path.join(work, name)
            os.makedirs(home)
            servers[name] = (start_zramd(binary, home, port, f"{max(64, slots * PAGE >> 20)}M"), port)
            load_zramd(port, corpus)
        results = {(n, s): [] for n in servers for s in ("get.lua", "put.lua")}
        for _ in range(args.rounds):
            for script in ("get.lua", "put.lua"):
                for name, (proc, port) in servers.items():
                    start = cpu_seconds(proc.pid)
                    r = wrk(port, script, 16, args.seconds, env)
                    used = cpu_seconds(proc.pid) - start
                    results[(name, script)].append((used * 1e6 / (r["req_s"] * args.seconds), r["req_s"]))
    finally:
        for proc, _ in servers.values():
            stop(proc)
    for (name, script), runs in sorted(results.items()):
        us = [x for x, _ in runs]
        print(f"{script:8} {name:6} µs/request median {statistics.median(us):6.2f} "
              f"({', '.join(f'{x:.1f}' for x in us)}); req/s median {statistics.median(y for _, y in runs):8.0f}")


if __name__ == "__main__":
    main()
