#!/usr/bin/env python3
"""make bench-http: zramd under wrk, with nginx serving a static 4 KiB file as the ceiling.

Starts both servers on loopback, loads the corpus into zramd, runs wrk with the Lua scripts
beside this file, prints req/s, MB/s, p50/p99 and ratios, writes bench/results/http.json.
"""
import argparse, http.client, json, os, re, shutil, signal, socket, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
PAGE = 4096


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port, path, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"server on port {port} did not answer {path}")


def wrk(port, script, connections, seconds, env):
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", os.path.join(HERE, script),
         f"http://127.0.0.1:{port}"], env=env, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def ms(label):
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        sys.exit(f"{script}: {errors.group(1)} error responses\n{out}")
    return {"req_s": rps, "p50_ms": ms("50"), "p99_ms": ms("99")}


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
    # The pages PUT scripts send: 512 corpus pages spread over the whole corpus.
    sample = b"".join(corpus[i * PAGE:(i + 1) * PAGE] for i in range(0, slots, slots // 512))[:512 * PAGE]
    open(os.path.join(work, "pages.bin"), "wb").write(sample)
    open(os.path.join(work, "page.bin"), "wb").write(corpus[:PAGE])
    open(os.path.join(work, "batch.bin"), "wb").write(corpus[:64 * PAGE])

    nginx_port, zramd_port = free_port(), free_port()
    conf = os.path.join(work, "nginx.conf")
    open(conf, "w").write(f"""
worker_processes 2;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {work};
    server {{ listen 127.0.0.1:{nginx_port}; root {work}; }}
}}
""")
    nginx = subprocess.Popen(["nginx", "-c", conf, "-g", "daemon off;"])
    zramd = subprocess.Popen(
        [args.zramd, "--listen", f"127.0.0.1:{zramd_port}", "--disksize", f"{max(64, slots * PAGE >> 20)}M",
         "--data-dir", os.path.join(work, "data")], stderr=open(os.path.join(work, "zramd.log"), "w"))
    try:
        wait_http(nginx_port, "/page.bin")
        wait_http(zramd_port, "/healthz")
        c = http.client.HTTPConnection("127.0.0.1", zramd_port)
        for first in range(0, slots, 64):
            body = corpus[first * PAGE:(first + 64) * PAGE]
            c.request("PUT", f"/dev/zram0/pages?from={first}", body=body)
            r = c.getresponse()
            r.read()
            assert r.status == 204, r.status
        env = dict(os.environ, ZBENCH_LUA=HERE, ZBENCH_PAGES=os.path.join(work, "pages.bin"), ZBENCH_SLOTS=str(slots))
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
        zramd.send_signal(signal.SIGTERM)
        nginx.send_signal(signal.SIGQUIT)
        zramd.wait(timeout=30)
        nginx.wait(timeout=30)
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
