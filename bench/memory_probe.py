#!/usr/bin/env python3
"""Where zramd's resident memory goes when the corpus is loaded, and how fast batch PUTs store it.

    python3 bench/memory_probe.py --zramd .build/release/zramd --corpus .corpus/pages-a.bin [--zramd OTHER ...]

For each binary, one fresh server per load: RSS growth at `disksize` and over the load, the
allocator's `mem_used_total`, what lies outside it, and bytes per page from before disksize (as
`make bench-peers` counts them). Loads: single-page PUTs (bench/loadgen, one connection) and
batch PUTs of 8, 16, 64 and 128 pages (one keep-alive connection). Then batch-64 PUT MB/s: the
corpus stored three times over one connection, median of three fresh servers.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchlib import PAGE, free_port, load_zramd, rss_bytes, start_zramd, stop, zramd_attr, zramd_read  # noqa: E402


def probe(binary, corpus_path, corpus, load):
    work = tempfile.mkdtemp(prefix="zbench-mem-")
    slots = len(corpus) // PAGE
    port = free_port()
    p = start_zramd(binary, work, port, "0")
    try:
        time.sleep(0.5)
        r0 = rss_bytes(p.pid)
        zramd_attr(port, "disksize", str(slots * PAGE))
        time.sleep(0.3)
        r1 = rss_bytes(p.pid)
        load(port, slots)
        time.sleep(0.5)  # the connection's end trims the heap on a background worker
        r2 = rss_bytes(p.pid)
        pool = int(zramd_read(port, "mm_stat").split()[2])
    finally:
        stop(p)
    return {"disksize_kib": (r1 - r0) >> 10, "load_kib": (r2 - r1) >> 10, "pool_kib": pool >> 10,
            "outside_pool_kib": (r2 - r1 - pool) >> 10, "bytes_per_page": (r2 - r0) / slots}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zramd", action="append", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--loader", default=os.path.join(os.path.dirname(HERE), ".build", "loadgen"))
    args = ap.parse_args()
    corpus = open(args.corpus, "rb").read()

    def single(port, slots):
        subprocess.run([args.loader, "--proto", "http", "--port", str(port), "--keys", str(slots), "--values",
                        args.corpus, "--mode", "load", "--conns", "1"], capture_output=True, check=True)

    loads = [("single", single)] + [(f"batch{b}", lambda port, _, b=b: load_zramd(port, corpus, batch=b))
                                    for b in (8, 16, 64, 128)]
    for binary in args.zramd:
        print(binary)
        for name, load in loads:
            r = probe(binary, args.corpus, corpus, load)
            print(f"  {name:9} disksize +{r['disksize_kib']} KiB, load +{r['load_kib']} KiB, pool {r['pool_kib']} KiB, "
                  f"outside the pool {r['outside_pool_kib']} KiB, {r['bytes_per_page']:.0f} B/page")
        speeds = []
        for _ in range(3):
            work = tempfile.mkdtemp(prefix="zbench-mem-")
            port = free_port()
            p = start_zramd(binary, work, port, str(len(corpus)))
            try:
                start = time.perf_counter()
                for _ in range(3):
                    load_zramd(port, corpus)
                speeds.append(3 * len(corpus) / (time.perf_counter() - start) / 1e6)
            finally:
                stop(p)
        print(f"  batch-64 PUT {statistics.median(speeds):.0f} MB/s (rounds {', '.join(f'{s:.0f}' for s in speeds)})")


if __name__ == "__main__":
    main()
