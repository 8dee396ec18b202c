#!/usr/bin/env python3
"""make bench-peers: zramd against memcached, Redis and nginx, all on loopback, same run.

1. memory: RSS growth per stored page (corpus loaded, then a random half overwritten),
   zramd lz4 and zstd vs memcached and Redis, each a fresh process;
2. throughput: single-page GET/PUT at 16 and 64 connections (wrk for zramd and nginx,
   memaslap for memcached, redis-benchmark for Redis), batch of 64 (zramd batch GET,
   memcached multiget, Redis MGET), interleaved rounds, medians;
3. latency isolation: zramd GET p50/p99/p999 at a constant rate (latency from the scheduled
   send time) while nothing, compact, recompress (zstd level 19) and writeback run;
4. scaling: zramd with 1x, 4x, 16x the corpus: GET ops/s and RSS bytes per page.
Writes bench/results/peers.json.
"""
import argparse, http.client, json, os, random, re, selectors, shutil, signal, socket, statistics, subprocess
import sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import (PAGE, free_port, load_zramd, rss_bytes, start_nginx, start_zramd, stop, wait_tcp,  # noqa: E402
                      wrk, wrk_env, write_sample_files, zramd_attr, zramd_read)

PROCS = []  # every server this script started, stopped in main's finally


def spawn(argv, log):
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    PROCS.append(p)
    return p


# ---------------------------------------------------------------- peers and their loaders

def start_memcached(work, port):
    user = ["-u", "root"] if os.geteuid() == 0 else []
    p = spawn(["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "8192", "-t", "2",
               "-c", "4096", *user], open(os.path.join(work, "memcached.log"), "w"))
    wait_tcp(port)
    return p


def start_redis(work, port):
    d = os.path.join(work, f"redis-{port}")
    os.makedirs(d)
    p = spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", d, "--daemonize", "no"], open(os.path.join(work, "redis.log"), "w"))
    wait_tcp(port)
    return p


def mc_key(i):
    return f"key:{i:012d}".encode()


def redis_key(i):  # what redis-benchmark -r generates for key:__rand_int__
    return f"key:{i:012d}".encode()


def read_exact_lines(sock, buf, count, line):
    """Read `count` replies that are each exactly `line` (e.g. b"STORED\\r\\n")."""
    need = count * len(line)
    while len(buf) < need:
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise RuntimeError("connection closed")
        buf += chunk
    assert buf[:need] == line * count, buf[:64]
    return buf[need:]


def load_memcached(port, items, batch=64):
    """items: list of (index, page). Pipelined `set`, 64 at a time."""
    s = socket.create_connection(("127.0.0.1", port))
    buf = b""
    for b in range(0, len(items), batch):
        part = items[b:b + batch]
        s.sendall(b"".join(b"set %s 0 0 %d\r\n%s\r\n" % (mc_key(i), len(v), v) for i, v in part))
        buf = read_exact_lines(s, buf, len(part), b"STORED\r\n")
    s.close()


def load_redis(port, items, batch=64):
    s = socket.create_connection(("127.0.0.1", port))
    buf = b""
    for b in range(0, len(items), batch):
        part = items[b:b + batch]
        s.sendall(b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(redis_key(i)), redis_key(i), len(v), v)
                           for i, v in part))
        buf = read_exact_lines(s, buf, len(part), b"+OK\r\n")
    s.close()


def put_zramd_items(port, items):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for i, v in items:
        c.request("PUT", f"/dev/zram0/pages/{i}", body=v)
        r = c.getresponse()
        r.read()
        assert r.status == 204, r.status


def memaslap(work, port, conns, seconds, kind, division=1):
    cfg = os.path.join(work, f"memaslap-{kind}.cfg")
    setp, getp = (1.0, 0.0) if kind == "set" else (0.0, 1.0)
    open(cfg, "w").write(f"key\n16 16 1\nvalue\n{PAGE} {PAGE} 1\ncmd\n0 {setp}\n1 {getp}\n")
    out = subprocess.run(["memcaslap", "-s", f"127.0.0.1:{port}", "-T", "2", "-c", str(conns), "-t", f"{seconds}s",
                          "-F", cfg, "-d", str(division), "-w", "1k"],
                         capture_output=True, text=True, timeout=seconds + 120).stdout
    m = re.findall(r"TPS:\s*(\d+)", out)
    if not m:
        raise RuntimeError(f"memaslap output:\n{out}")
    return float(m[-1])


def redis_bench(port, conns, requests, keyspace, *command, test=None):
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(conns), "-n", str(requests),
            "-r", str(keyspace), "--threads", "2", "--csv"]
    argv += ["-t", test, "-d", str(PAGE)] if test else list(command)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=True).stdout
    row = [line for line in out.splitlines() if line and not line.startswith('"test"')][-1]
    return float(row.split(",")[1].strip('"'))


# ---------------------------------------------------------------- constant-rate latency loader

def constant_rate_get(port, slots, rate, seconds, conns=8, stop_event=None):
    """GET random pages at `rate` per second over `conns` keep-alive connections, one thread.
    Each request has a scheduled time; its latency is measured from that time (no coordinated
    omission: a stalled server delays the schedule's requests and they count the wait).
    Ends after `seconds`, or earlier when stop_event is set. Returns latencies in µs."""
    sel = selectors.DefaultSelector()
    free, state = [], {}
    for _ in range(conns):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        free.append(s)
    lat, rnd = [], random.Random(5)
    t0 = time.perf_counter()
    n_sched = 0
    backlog = []  # scheduled times not yet sent
    end = t0 + seconds
    while True:
        now = time.perf_counter()
        stopping = now >= end or (stop_event is not None and stop_event.is_set())
        if not stopping:
            while t0 + n_sched / rate <= now:
                backlog.append(t0 + n_sched / rate)
                n_sched += 1
        elif not state:
            break
        if now > end + 60:
            raise RuntimeError(f"{len(state)} GETs unanswered 60 s after the window")
        if stopping:
            backlog.clear()
        while backlog and free:
            s = free.pop()
            sched = backlog.pop(0)
            s.send(b"GET /dev/zram0/pages/%d HTTP/1.1\r\nHost: x\r\n\r\n" % rnd.randrange(slots))
            state[s] = [sched, b""]
            sel.register(s, selectors.EVENT_READ)
        timeout = max(0.0, min(t0 + n_sched / rate - time.perf_counter(), 0.01))
        for key, _ in sel.select(timeout if not backlog or not free else 0):
            s = key.fileobj
            st = state[s]
            chunk = s.recv(1 << 16)
            if not chunk:
                raise RuntimeError("zramd closed a latency connection")
            st[1] += chunk
            head_end = st[1].find(b"\r\n\r\n")
            if head_end < 0:
                continue
            m = re.search(rb"content-length: *(\d+)", st[1][:head_end], re.I)
            if len(st[1]) < head_end + 4 + int(m.group(1)):
                continue
            assert st[1].startswith(b"HTTP/1.1 200"), st[1][:80]
            lat.append((time.perf_counter() - st[0]) * 1e6)
            sel.unregister(s)
            del state[s]
            free.append(s)
    for s in free:
        s.close()
    return lat


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


# ---------------------------------------------------------------- the four measurements

def memory(args, work, corpus, slots, rows):
    """RSS growth per page: from before load (zramd: before disksize, so the slot table counts) to after
    loading the corpus, and to after overwriting a random half with other corpus pages."""
    pages = [corpus[i * PAGE:(i + 1) * PAGE] for i in range(slots)]
    rnd = random.Random(1)
    half = rnd.sample(range(slots), slots // 2)
    over = [(i, pages[rnd.randrange(slots)]) for i in half]
    items = list(enumerate(pages))
    out = {}
    for name in ("zramd_lz4", "zramd_zstd", "memcached", "redis"):
        port = free_port()
        if name.startswith("zramd"):
            p = start_zramd(args.zramd, work, port, "0", ["--comp-algorithm", name.split("_")[1]], log=f"{name}.log")
            PROCS.append(p)
            time.sleep(0.5)
            rss0 = rss_bytes(p.pid)
            zramd_attr(port, "disksize", str(slots * PAGE))
            load_zramd(port, corpus)
        else:
            p = start_memcached(work, port) if name == "memcached" else start_redis(work, port)
            time.sleep(0.5)
            rss0 = rss_bytes(p.pid)
            (load_memcached if name == "memcached" else load_redis)(port, items)
        time.sleep(0.5)
        rss1 = rss_bytes(p.pid)
        if name.startswith("zramd"):
            put_zramd_items(port, over)
        else:
            (load_memcached if name == "memcached" else load_redis)(port, over)
        time.sleep(0.5)
        rss2 = rss_bytes(p.pid)
        r = {"rss_before": rss0, "rss_loaded": rss1, "rss_overwritten": rss2,
             "bytes_per_page_loaded": (rss1 - rss0) / slots, "bytes_per_page_overwritten": (rss2 - rss0) / slots}
        if name.startswith("zramd"):
            r["mm_stat"] = zramd_read(port, "mm_stat").split()
        out[name] = r
        stop(p)
        rows.append(f"| {name} | {r['bytes_per_page_loaded']:.0f} | {r['bytes_per_page_overwritten']:.0f} |")
        print(f"memory {name}: {r['bytes_per_page_loaded']:.0f} B/page loaded, "
              f"{r['bytes_per_page_overwritten']:.0f} after overwrite", flush=True)
    return out


def throughput(args, work, corpus, slots, nginx_port):
    zport, mport, rport = free_port(), free_port(), free_port()
    z = start_zramd(args.zramd, work, zport, str(slots * PAGE), log="zramd-tput.log")
    PROCS.append(z)
    load_zramd(zport, corpus)
    m = start_memcached(work, mport)
    r = start_redis(work, rport)
    items = [(i, corpus[i * PAGE:(i + 1) * PAGE]) for i in range(slots)]
    load_memcached(mport, items)
    load_redis(rport, items)
    env = wrk_env(work, slots)
    sec = args.seconds
    est = {}  # redis-benchmark is sized in requests: aim at `sec` seconds from the last round's rate

    def rb(name, conns, *cmd, test=None, default=60000):
        n = int(max(2000, est.get(name, default) * sec))
        v = redis_bench(rport, conns, n, slots, *cmd, test=test)
        est[name] = v
        return v

    mget = ["MGET"] + ["key:__rand_int__"] * 64
    runs = {}
    for rnd_ in range(args.rounds):
        for conns in (16, 64):
            plan = [
                ("nginx_static", lambda c=conns: wrk(nginx_port, "static.lua", c, sec, env)["req_s"]),
                ("zramd_get", lambda c=conns: wrk(zport, "get.lua", c, sec, env)["req_s"]),
                ("memcached_get", lambda c=conns: memaslap(work, mport, c, sec, "get")),
                ("redis_get", lambda c=conns: rb(f"get{c}", c, test="get")),
                ("zramd_put", lambda c=conns: wrk(zport, "put.lua", c, sec, env)["req_s"]),
                ("memcached_set", lambda c=conns: memaslap(work, mport, c, sec, "set")),
                ("redis_set", lambda c=conns: rb(f"set{c}", c, test="set")),
            ]
            for name, fn in plan:
                runs.setdefault(f"{name}_c{conns}", []).append(fn())
        # batches of 64 pages, 16 connections: MB/s of page data
        runs.setdefault("zramd_batch64_mb_s", []).append(wrk(zport, "batch_get.lua", 16, sec, env)["req_s"] * 64 * PAGE / 1e6)
        runs.setdefault("memcached_multiget64_mb_s", []).append(memaslap(work, mport, 16, sec, "get", 64) * PAGE / 1e6)
        runs.setdefault("redis_mget64_mb_s", []).append(rb("mget", 16, *mget, default=3000) * 64 * PAGE / 1e6)
        runs.setdefault("nginx_static_256k_mb_s", []).append(wrk(nginx_port, "static_batch.lua", 16, sec, env)["req_s"] * 64 * PAGE / 1e6)
        print(f"throughput round {rnd_ + 1}: " + ", ".join(f"{k}={v[-1]:.0f}" for k, v in runs.items()), flush=True)
    for p in (z, m, r):
        stop(p)
    return {k: {"median": statistics.median(v), "rounds": v} for k, v in runs.items()}


def latency(args, work, corpus, slots):
    port = free_port()
    z = start_zramd(args.zramd, work, port, "0", ["--backing-dev", "wb.sqlite"], log="zramd-lat.log")
    PROCS.append(z)
    zramd_attr(port, "recomp_algorithm", "algo=zstd")
    zramd_attr(port, "algorithm_params", "algo=zstd level=19")
    k = args.lat_scale  # copies of the corpus, so that writeback and recompress run long enough
    zramd_attr(port, "disksize", str(k * slots * PAGE))
    for c in range(k):
        load_zramd(port, corpus, first_slot=c * slots)
    slots *= k
    rnd = random.Random(2)
    # overwrite a random half with other corpus pages: the pool then has holes for compact to close
    churn = []
    for i in rnd.sample(range(slots), slots // 2):
        o = rnd.randrange(slots // k) * PAGE
        churn.append((i, corpus[o:o + PAGE]))

    def compact():  # repeated for the whole window: the first call moves objects, later ones scan
        zramd_attr(port, "compact", "1")

    ops = [("idle", None), ("compact", compact),
           ("recompress", lambda: zramd_attr(port, "recompress", "algo=zstd")),
           ("writeback", lambda: (zramd_attr(port, "idle", "all"), zramd_attr(port, "writeback", "idle")))]
    out = {}
    put_zramd_items(port, churn)
    for name, op in ops:
        done, info = threading.Event(), {"runs": 0, "seconds": 0.0}

        def background():
            t = time.perf_counter()
            try:
                while not done.is_set() and info["runs"] < (100000 if name == "compact" else 1):
                    op()
                    info["runs"] += 1
            finally:
                info["seconds"] = time.perf_counter() - t
                done.set()

        if op is None:
            lat = constant_rate_get(port, slots, args.rate, args.lat_seconds)
        else:
            th = threading.Thread(target=background)
            th.start()
            lat = constant_rate_get(port, slots, args.rate, args.lat_seconds * (6 if name != "compact" else 1),
                                    stop_event=None if name == "compact" else done)
            done.set()
            th.join(timeout=3600)
        out[name] = {"p50_us": pct(lat, 0.5), "p99_us": pct(lat, 0.99), "p999_us": pct(lat, 0.999),
                     "requests": len(lat), "op_runs": info["runs"], "op_seconds": info["seconds"]}
        print(f"latency {name}: p50 {out[name]['p50_us']:.0f} µs p99 {out[name]['p99_us']:.0f} µs "
              f"p999 {out[name]['p999_us']:.0f} µs over {len(lat)} requests, op {info}", flush=True)
    out["mm_stat_end"] = zramd_read(port, "mm_stat").split()
    out["bd_stat_end"] = zramd_read(port, "bd_stat").split()
    stop(z)
    return out


def scaling(args, work, corpus, slots):
    out = {}
    for k in args.scales:
        port = free_port()
        z = start_zramd(args.zramd, work, port, "0", log=f"zramd-x{k}.log")
        PROCS.append(z)
        time.sleep(0.5)
        rss0 = rss_bytes(z.pid)
        zramd_attr(port, "disksize", str(k * slots * PAGE))
        for c in range(k):
            load_zramd(port, corpus, first_slot=c * slots)
        time.sleep(0.5)
        rss1 = rss_bytes(z.pid)
        env = wrk_env(work, k * slots)
        gets = [wrk(port, "get.lua", 16, args.seconds, env)["req_s"] for _ in range(args.rounds)]
        out[f"x{k}"] = {"pages": k * slots, "bytes_per_page": (rss1 - rss0) / (k * slots),
                        "get_c16_req_s": statistics.median(gets), "get_rounds": gets}
        stop(z)
        print(f"scaling x{k}: {out[f'x{k}']['bytes_per_page']:.0f} B/page, GET c16 {statistics.median(gets):.0f}/s", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zramd", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true", help="~3-minute smoke run")
    ap.add_argument("--only", default="memory,throughput,latency,scaling")
    args = ap.parse_args()
    args.seconds, args.rounds, args.lat_seconds, args.rate = (2, 1, 4, 2000) if args.quick else (4, 3, 10, 2000)
    args.scales = (1, 4) if args.quick else (1, 4, 16)
    args.lat_scale = 1 if args.quick else 4
    only = args.only.split(",")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))  # run the finally below

    work = tempfile.mkdtemp(prefix="zbench-peers-")
    corpus = open(args.corpus, "rb").read()
    slots = len(corpus) // PAGE
    corpus = corpus[:slots * PAGE]
    write_sample_files(work, corpus, slots)
    res = {"slots": slots, "seconds_per_run": args.seconds, "rounds": args.rounds, "quick": args.quick,
           "latency_rate_per_s": args.rate}
    nginx = None
    t_start = time.time()
    try:
        nginx_port = free_port()
        nginx = start_nginx(work, nginx_port)
        rows = []
        if "memory" in only:
            res["memory"] = memory(args, work, corpus, slots, rows)
        if "throughput" in only:
            res["throughput"] = throughput(args, work, corpus, slots, nginx_port)
        if "latency" in only:
            res["latency"] = latency(args, work, corpus, slots)
        if "scaling" in only:
            res["scaling"] = scaling(args, work, corpus, slots)
    finally:
        for p in PROCS:
            stop(p)
        stop(nginx, signal.SIGQUIT)
        shutil.rmtree(work, ignore_errors=True)

    if "memory" in res:
        mem = {k: v["bytes_per_page_loaded"] for k, v in res["memory"].items()}
        res["rss_per_page_vs_memcached"] = mem["zramd_lz4"] / mem["memcached"]
        res["rss_per_page_vs_redis"] = mem["zramd_lz4"] / mem["redis"]
        res["rss_per_page_zstd_vs_memcached"] = mem["zramd_zstd"] / mem["memcached"]
        res["rss_per_page_zstd_vs_redis"] = mem["zramd_zstd"] / mem["redis"]
        ov = {k: v["bytes_per_page_overwritten"] for k, v in res["memory"].items()}
        res["rss_per_page_overwritten_vs_memcached"] = ov["zramd_lz4"] / ov["memcached"]
        res["rss_per_page_overwritten_vs_redis"] = ov["zramd_lz4"] / ov["redis"]
    if "throughput" in res:
        t = {k: v["median"] for k, v in res["throughput"].items()}
        res["get_vs_nginx"] = min(t[f"zramd_get_c{c}"] / t[f"nginx_static_c{c}"] for c in (16, 64))
        res["get_vs_memcached"] = min(t[f"zramd_get_c{c}"] / t[f"memcached_get_c{c}"] for c in (16, 64))
        res["get_vs_redis"] = min(t[f"zramd_get_c{c}"] / t[f"redis_get_c{c}"] for c in (16, 64))
        res["put_vs_nginx"] = min(t[f"zramd_put_c{c}"] / t[f"nginx_static_c{c}"] for c in (16, 64))
        res["put_vs_memcached"] = min(t[f"zramd_put_c{c}"] / t[f"memcached_set_c{c}"] for c in (16, 64))
        res["batch_mb_s_vs_redis_mget"] = t["zramd_batch64_mb_s"] / t["redis_mget64_mb_s"]
        res["batch_mb_s_vs_memcached_multiget"] = t["zramd_batch64_mb_s"] / t["memcached_multiget64_mb_s"]
    if "latency" in res:
        idle = res["latency"]["idle"]["p99_us"]
        for op in ("recompress", "writeback", "compact"):
            res[f"p99_{op}_vs_idle"] = res["latency"][op]["p99_us"] / idle
    res["wall_seconds"] = time.time() - t_start
    for k in sorted(res):
        if isinstance(res[k], float):
            print(f"{k} = {res[k]:.3f}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    json.dump(res, open(args.out, "w"), indent=2, sort_keys=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
