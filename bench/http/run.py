#!/usr/bin/env python3
"""make bench-http: zramd under wrk, with nginx serving a static 4 KiB file as the ceiling.

Starts both servers on loopback, loads the corpus into zramd, runs wrk with the Lua scripts
beside this file, prints req/s, MB/s, p50/p99 and ratios, writes bench/results/http.json.
"""
import argparse, json, os, shutil, signal, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import PAGE, free_port, load_zramd, start_nginx, start_zramd, stop, wrk, wrk_env, write_sample_files  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zramd", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--device-results", required=True, help="bench/results/device.json of the same machine")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=int, default=8)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="zbench-http-")
    corpus = open(args.corpus, "rb").read()
    slots = len(corpus) // PAGE
    write_sample_files(work, corpus, slots)
    nginx_port, zramd_port = free_port(), free_port()
    nginx = zramd = None
    try:
        nginx = start_nginx(work, nginx_port)
        zramd = start_zramd(args.zramd, work, zramd_port, f"{max(64, slots * PAGE >> 20)}M")
        load_zramd(zramd_port, corpus)
        env = wrk_env(work, slots)
        results, rows = {}, []

        def run(name, port, script, conns, pages_per_request=1):
            r = wrk(port, script, conns, args.seconds, env)
            r["mb_s"] = r["req_s"] * pages_per_request * PAGE / 1e6
            results[name] = r
            rows.append((name, conns, r))
            return r

        for conns in (16, 64):
            run(f"nginx_static_c{conns}", nginx_port, "static.lua", conns)
            run(f"get_c{conns}", zramd_port, "get.lua", conns)
            run(f"put_c{conns}", zramd_port, "put.lua", conns)
        run("nginx_static_256k_c16", nginx_port, "static_batch.lua", 16, 64)
        run("batch_get_c16", zramd_port, "batch_get.lua", 16, 64)
        run("batch_put_c16", zramd_port, "batch_put.lua", 16, 64)
        run("mixed_80_20_c64", zramd_port, "mixed.lua", 64)
    finally:
        stop(zramd)
        stop(nginx, signal.SIGQUIT)
        shutil.rmtree(work, ignore_errors=True)

    device = json.load(open(args.device_results))
    ceiling = {c: results[f"nginx_static_c{c}"]["req_s"] for c in (16, 64)}
    summary = {
        "get_vs_nginx": min(results[f"get_c{c}"]["req_s"] / ceiling[c] for c in (16, 64)),
        "put_vs_nginx": min(results[f"put_c{c}"]["req_s"] / ceiling[c] for c in (16, 64)),
        "batch_get_mb_s_vs_device": results["batch_get_c16"]["mb_s"] / device["device_read_mb_s"],
        "batch_put_mb_s_vs_device": results["batch_put_c16"]["mb_s"] / device["device_write_mb_s"],
        "batch_get_vs_nginx_256k": results["batch_get_c16"]["req_s"] / results["nginx_static_256k_c16"]["req_s"],
        "device_read_mb_s": device["device_read_mb_s"],
        "device_write_mb_s": device["device_write_mb_s"],
        "runs": results,
        "seconds_per_run": args.seconds,
    }
    print(f"{'run':18} {'conns':>5} {'req/s':>10} {'MB/s':>8} {'p50 ms':>8} {'p99 ms':>8}  vs nginx")
    for name, conns, r in rows:
        ratio = f"{r['req_s'] / ceiling[conns]:.2f}" if name.split('_c')[0] in ("get", "put", "mixed_80_20") else ""
        print(f"{name:18} {conns:>5} {r['req_s']:>10.0f} {r['mb_s']:>8.0f} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f}  {ratio}")
    for key in ("get_vs_nginx", "put_vs_nginx", "batch_get_mb_s_vs_device", "batch_put_mb_s_vs_device",
                "batch_get_vs_nginx_256k"):
        print(f"{key} = {summary[key]:.2f}")
    json.dump(summary, open(args.out, "w"), indent=2, sort_keys=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
