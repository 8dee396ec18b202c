#!/usr/bin/env python3
"""make bench-nbd: zramd's NBD export against `nbdkit memory` (in RAM, uncompressed), same run, same client.

Both servers get the same 256 MiB of corpus pages (nbdcopy), then fio's nbd engine measures 4 KiB
random read and write IOPS at queue depth 1 and 32 and 1 MiB sequential read and write MB/s
over that region, alternating between the servers for several rounds (median); RSS per stored
page is each server's resident-set growth while the pages were copied in, divided by the page
count. Ratios are zramd / nbdkit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAGE = 4096
REGION = 256 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen) -> None:
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"server exited: {proc.args}")
            time.sleep(0.05)
    sys.exit(f"server did not listen: {proc.args}")


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def fio(uri: str, rw: str, bs: str, depth: int, runtime: int) -> dict:
    args = ["fio", "--name=b", "--ioengine=nbd", f"--uri={uri}", f"--rw={rw}", f"--bs={bs}", f"--iodepth={depth}",
            f"--size={REGION}", "--time_based", f"--runtime={runtime}", "--ramp_time=1", "--norandommap",
            "--randrepeat=0", "--buffer_compress_percentage=60", "--refill_buffers", "--output-format=json"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=runtime + 120)
    if out.returncode != 0:
        sys.exit(f"fio failed: {out.stderr}")
    job = json.loads(out.stdout[out.stdout.index("{"):])["jobs"][0]
    side = job["read"] if "read" in rw else job["write"]
    return {"iops": round(side["iops"], 1), "mb_s": round(side["bw_bytes"] / 1e6, 1),
            "p99_us": round(side["clat_ns"]["percentile"].get("99.000000", 0) / 1000, 1)}


JOBS = [("randread", "4k", 1, "randread_qd1"), ("randread", "4k", 32, "randread_qd32"),
        ("randwrite", "4k", 1, "randwrite_qd1"), ("randwrite", "4k", 32, "randwrite_qd32"),
        ("read", "1m", 4, "seqread_1m"), ("write", "1m", 4, "seqwrite_1m")]


def start(cmd: list[str], port: int, uri: str, source: Path) -> tuple[subprocess.Popen, float]:
    """Starts a server, copies the pages in; returns it and its resident-set growth per page."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc)
    time.sleep(0.5)
    before = rss(proc.pid)
    subprocess.run(["nbdcopy", str(source), uri], check=True)
    time.sleep(0.5)
    return proc, round((rss(proc.pid) - before) / (REGION // PAGE), 1)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--zramd", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--runtime", type=int, default=int(os.environ.get("NBD_BENCH_RUNTIME", "5")))
    p.add_argument("--rounds", type=int, default=int(os.environ.get("NBD_BENCH_ROUNDS", "3")))
    a = p.parse_args()
    corpus = Path(a.corpus).read_bytes()
    with tempfile.TemporaryDirectory(prefix="bench-nbd-") as tmp:
        source = Path(tmp) / "pages.bin"
        with open(source, "wb") as f:
            written = 0
            while written < REGION:
                chunk = corpus[: REGION - written]
                f.write(chunk)
                written += len(chunk)
        zport, hport, kport = free_port(), free_port(), free_port()
        servers = {
            "zramd": (f"nbd://127.0.0.1:{zport}/zram0", [a.zramd, "--listen", f"127.0.0.1:{hport}", "--nbd-listen",
                      f"127.0.0.1:{zport}", "--disksize", "1G", "--data-dir", str(Path(tmp) / "data")], zport),
            "nbdkit": (f"nbd://127.0.0.1:{kport}/", ["nbdkit", "-f", "-p", str(kport), "-i", "127.0.0.1", "memory", "1G"], kport),
        }
        procs, results = {}, {}
        try:
            for name, (uri, cmd, port) in servers.items():
                procs[name], per_page = start(cmd, port, uri, source)
                results[name] = {"rss_per_page_bytes": per_page}
            # Both servers stay up; each job runs on one then the other, `rounds` times, and the
            # median counts: the machine is shared, and back-to-back runs see the same load.
            for rw, bs, depth, key in JOBS:
                runs: dict[str, list[dict]] = {name: [] for name in servers}
                for _ in range(a.rounds):
                    for name, (uri, _, _) in servers.items():
                        runs[name].append(fio(uri, rw, bs, depth, a.runtime))
                for name in servers:
                    ordered = sorted(runs[name], key=lambda r: r["iops"])
                    results[name][key] = ordered[len(ordered) // 2]
                    print(f"{name:7} {key:15} {results[name][key]}  (iops of each round: {[r['iops'] for r in runs[name]]})", flush=True)
        finally:
            for proc in procs.values():
                stop(proc)
        zramd, nbdkit = results["zramd"], results["nbdkit"]

    def ratio(key: str, field: str) -> float:
        return round(zramd[key][field] / nbdkit[key][field], 3)

    seq = round((zramd["seqread_1m"]["mb_s"] + zramd["seqwrite_1m"]["mb_s"]) / (nbdkit["seqread_1m"]["mb_s"] + nbdkit["seqwrite_1m"]["mb_s"]), 3)
    result = {
        "nbd_randread_iops_vs_nbdkit": ratio("randread_qd32", "iops"),
        "nbd_randwrite_iops_vs_nbdkit": ratio("randwrite_qd32", "iops"),
        "nbd_randread_qd1_iops_vs_nbdkit": ratio("randread_qd1", "iops"),
        "nbd_randwrite_qd1_iops_vs_nbdkit": ratio("randwrite_qd1", "iops"),
        "nbd_seq_mb_s_vs_nbdkit": seq,
        "nbd_seqread_mb_s_vs_nbdkit": ratio("seqread_1m", "mb_s"),
        "nbd_seqwrite_mb_s_vs_nbdkit": ratio("seqwrite_1m", "mb_s"),
        "nbd_rss_per_page_vs_nbdkit": round(zramd["rss_per_page_bytes"] / nbdkit["rss_per_page_bytes"], 3),
        "zramd": zramd,
        "nbdkit": nbdkit,
        "setup": {"region_bytes": REGION, "fio_runtime_s": a.runtime, "rounds": a.rounds, "statistic": "median of rounds, zramd and nbdkit alternating", "cores": os.cpu_count(), "machine": platform.node(),
                  "fio_data": "buffer_compress_percentage=60, refill_buffers; region pre-filled with corpus pages",
                  "headline_iops_at": "queue depth 32 (qd1 keys beside them)", "seq": "1 MiB, depth 4, read+write MB/s summed"},
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k.startswith("nbd_")}, indent=2))


if __name__ == "__main__":
    main()
