#!/usr/bin/env python3
"""make bench-peers: zramd against memcached, Redis and nginx, all on loopback, same run.

1. memory: RSS growth per stored page (corpus loaded, then a random half overwritten),
   zramd lz4 and zstd vs memcached and Redis, each a fresh process;
2. throughput: single-page GET and PUT/set at 16 and 64 connections and a batch of 64 pages
   (zramd batch GET, memcached multi-key get, Redis MGET, nginx one 256 KiB file) for all four
   servers with one C loader (bench/loadgen/loadgen.c: closed loop, one request in flight per
   connection, same keys and values for every server; nginx serves each page as a file, PUT by
   WebDAV), interleaved rounds, medians; next to req/s, each server's CPU time per request
   (utime + stime of the process and its children) and the loader's own;
3. latency isolation: zramd GET p50/p99/p999 at a constant rate (latency from the scheduled
   send time) while nothing, compact, recompress (zstd level 19) and writeback run;
4. scaling: zramd with 1x, 4x, 16x the corpus: GET ops/s (the same loader) and RSS bytes per page.
Writes bench/results/peers.json.
"""
import argparse, http.client, json, os, random, re, selectors, shutil, signal, socket, statistics, subprocess
import sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import (PAGE, free_port, load_zramd, rss_bytes, run_loadgen, start_nginx, start_zramd, stop, wait_tcp,  # noqa: E402
                      zramd_attr, zramd_read)

PROCS = []  # every server this script started, stopped in main's finally


def spawn(argv, log):
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    PROCS.append(p)
    return p


# ---------------------------------------------------------------- peers and their loaders

def start_memcached(work, port, threads=2):
    user = ["-u", "root"] if os.geteuid() == 0 else []
    p = spawn(["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "8192", "-t", str(threads),
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


def redis_key(i):  # the loader's key names too
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


def loadgen(args, proto, port, mode="run", op="get", conns=16, seconds=None, keys=None, pid=None,
            path_fmt=None, batch=1, seed=42):
    """One run of bench/loadgen; its JSON. Any failed request (bad status, miss, a body that is not
    the key's page, a closed connection) stops the benchmark."""
    run = mode == "run"
    r = run_loadgen(
        args.loader, timeout=(seconds or args.seconds) + 600, proto=proto, port=port, keys=keys or args.slots,
        values=args.corpus, mode=mode, conns=conns, seed=seed, op=op if run else None,
        seconds=(seconds or args.seconds) if run else None, server_pid=pid, path_fmt=path_fmt,
        batch=batch if batch > 1 else None)
    if r["failed"]:
        raise RuntimeError(f"{proto} {mode} on port {port}: {r['failed']} failed requests, first: {r['first_error']}")
    return r


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


SERVERS = ("zramd", "nginx", "memcached", "redis")
OPS = ("get", "put")
CONNS = (16, 64)
BATCH = 64
# what each run keeps, medians of the rounds
FIELDS = ("req_s", "server_cpu_us_per_req", "loader_cpu_us_per_req", "p50_us", "p99_us", "p999_us")


def throughput(args, work, nginx, nginx_port):
    """Every server with the corpus stored (key k = page k), then interleaved rounds: for each connection
    count and op, zramd, nginx, memcached, Redis in turn; then the batch runs."""
    zport, mport, rport = free_port(), free_port(), free_port()
    z = start_zramd(args.zramd, work, zport, str(args.slots * PAGE), log="zramd-tput.log")
    PROCS.append(z)
    m = start_memcached(work, mport)
    r = start_redis(work, rport)
    target = {"zramd": ("http", zport, z.pid, None), "nginx": ("http", nginx_port, nginx.pid, "/pages/%d"),
              "memcached": ("memcache", mport, m.pid, None), "redis": ("redis", rport, r.pid, None)}
    for name in ("zramd", "memcached", "redis"):  # nginx's pages are files already
        proto, port, _, _ = target[name]
        loadgen(args, proto, port, mode="load")
    batch_target = {"zramd": "/dev/zram0/pages?from=%d&count=" + str(BATCH), "nginx": "/batch.bin"}

    def run(name, op, conns, seed, batch=1, seconds=None):
        proto, port, pid, path = target[name]
        return loadgen(args, proto, port, op=op, conns=conns, pid=pid, seed=seed, batch=batch, seconds=seconds,
                       path_fmt=batch_target.get(name) if batch > 1 else path)

    for name in SERVERS:  # warm-up: connections, caches, nginx's open files; not counted
        run(name, "get", 16, 0, seconds=1)
    runs = {name: {op: {f"c{c}": [] for c in CONNS} for op in OPS} for name in SERVERS}
    batch = {name: [] for name in SERVERS}
    for rnd_ in range(args.rounds):
        seed = rnd_ + 1  # every server gets the same key sequence within a round
        for conns in CONNS:
            for op in OPS:
                for name in SERVERS:
                    x = run(name, op, conns, seed)
                    runs[name][op][f"c{conns}"].append({k: x[k] for k in FIELDS})
                    print(f"round {rnd_ + 1} {op} c{conns} {name}: {x['req_s']:.0f} req/s, server "
                          f"{x['server_cpu_us_per_req']:.1f} µs CPU/req, loader {x['loader_cpu_us_per_req']:.1f}, "
                          f"p99 {x['p99_us']:.0f} µs", flush=True)
        for name in SERVERS:  # 64 pages per request, 16 connections
            x = run(name, "get", 16, seed, batch=BATCH)
            batch[name].append({"mb_s": x["req_s"] * BATCH * PAGE / 1e6, **{k: x[k] for k in FIELDS}})
        print(f"round {rnd_ + 1} batch of {BATCH}: " + ", ".join(f"{n} {v[-1]['mb_s']:.0f} MB/s" for n, v in batch.items()),
              flush=True)
    for p in (z, m, r):
        stop(p)

    def med(rows):
        return {**{k: statistics.median(x[k] for x in rows) for k in rows[0]}, "rounds": rows}

    out = {name: {op: {c: med(v) for c, v in ops.items()} for op, ops in runs[name].items()} for name in SERVERS}
    out["batch64"] = {name: med(v) for name, v in batch.items()}
    # The loader's own cost per request, over every single-page run against each server.
    loader = {}
    for name in SERVERS:
        rows = [x for op in OPS for c in CONNS for x in runs[name][op][f"c{c}"]]
        lcpu = statistics.median(x["loader_cpu_us_per_req"] for x in rows)
        loader[name] = {"loader_cpu_us_per_req": lcpu, "loader_req_per_cpu_s": 1e6 / lcpu,
                        "server_cpu_us_per_req": statistics.median(x["server_cpu_us_per_req"] for x in rows),
                        "loader_over_server_cpu": lcpu / statistics.median(x["server_cpu_us_per_req"] for x in rows),
                        "max_req_s": max(x["req_s"] for x in rows)}
    out["loader"] = loader
    return out


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
        runs = [loadgen(args, "http", port, conns=16, keys=k * slots, pid=z.pid, seed=i + 1) for i in range(args.rounds)]
        gets = [x["req_s"] for x in runs]
        out[f"x{k}"] = {"pages": k * slots, "bytes_per_page": (rss1 - rss0) / (k * slots),
                        "get_c16_req_s": statistics.median(gets), "get_rounds": gets,
                        "get_c16_server_cpu_us_per_req": statistics.median(x["server_cpu_us_per_req"] for x in runs)}
        stop(z)
        print(f"scaling x{k}: {out[f'x{k}']['bytes_per_page']:.0f} B/page, GET c16 {statistics.median(gets):.0f}/s", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zramd", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--loader", required=True, help="the built bench/loadgen/loadgen.c")
    ap.add_argument("--quick", action="store_true", help="~3-minute smoke run")
    ap.add_argument("--only", default="memory,throughput,latency,scaling")
    args = ap.parse_args()
    args.seconds, args.rounds, args.lat_seconds, args.rate = (2, 1, 4, 2000) if args.quick else (3, 5, 10, 2000)
    args.scales = (1, 4) if args.quick else (1, 4, 16)
    args.lat_scale = 1 if args.quick else 4
    only = args.only.split(",")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))  # run the finally below

    work = tempfile.mkdtemp(prefix="zbench-peers-")
    # nginx's pages are files in RAM (tmpfs) when there is one, as the other servers' are
    www = tempfile.mkdtemp(prefix="zbench-peers-www-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    corpus = open(args.corpus, "rb").read()
    slots = args.slots = len(corpus) // PAGE
    corpus = corpus[:slots * PAGE]
    os.makedirs(os.path.join(www, "pages"))
    for k in range(slots):  # the file of key k holds page k, like every other server's key k
        open(os.path.join(www, "pages", str(k)), "wb").write(corpus[k * PAGE:(k + 1) * PAGE])
    open(os.path.join(www, "page.bin"), "wb").write(corpus[:PAGE])
    open(os.path.join(www, "batch.bin"), "wb").write(corpus[:64 * PAGE])
    fs = subprocess.run(["stat", "-f", "-c", "%T", www], capture_output=True, text=True).stdout.strip()
    res = {"slots": slots, "seconds_per_run": args.seconds, "rounds": args.rounds, "quick": args.quick,
           "latency_rate_per_s": args.rate, "nginx_root_fs": fs, "cores": os.cpu_count(),
           "loadavg_start": os.getloadavg()[0],
           "loader": "bench/loadgen/loadgen.c: C, epoll, one thread, closed loop, one request in flight per "
                     "connection, no pipelining; keys uniform over the corpus's 14,336 slots, key k holds page k; "
                     "zramd GET/PUT /dev/zram0/pages/K, nginx GET/PUT (WebDAV) /pages/K (one file per page, "
                     "tmpfs), memcached get/set and Redis GET/SET of key:%012d",
           "cpu_per_req": "utime + stime + cutime + cstime (/proc/PID/stat fields 14-17) of the server and its live "
                          "descendants (nginx: master and workers) over the run, divided by the requests answered"}
    nginx = None
    t_start = time.time()
    try:
        nginx_port = free_port()
        nginx = start_nginx(work, nginx_port, root=www, put_location="/pages/")
        rows = []
        if "memory" in only:
            res["memory"] = memory(args, work, corpus, slots, rows)
        if "throughput" in only:
            res["throughput"] = throughput(args, work, nginx, nginx_port)
        if "latency" in only:
            res["latency"] = latency(args, work, corpus, slots)
        if "scaling" in only:
            res["scaling"] = scaling(args, work, corpus, slots)
    finally:
        for p in PROCS:
            stop(p)
        stop(nginx, signal.SIGQUIT)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(www, ignore_errors=True)

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
        t = res["throughput"]

        def worse(op, peer, peer_op=None, key="req_s"):
            """zramd over the peer at 16 and 64 connections; the worse of the two (req/s: the lower ratio,
            CPU per request: the higher)."""
            ratios = [t["zramd"][op][f"c{c}"][key] / t[peer][peer_op or op][f"c{c}"][key] for c in CONNS]
            return min(ratios) if key == "req_s" else max(ratios)

        for peer in ("memcached", "redis", "nginx"):
            res[f"get_vs_{peer}"] = worse("get", peer)
            res[f"get_cpu_per_req_vs_{peer}"] = worse("get", peer, key="server_cpu_us_per_req")
            res[f"put_cpu_per_req_vs_{peer}"] = worse("put", peer, key="server_cpu_us_per_req")
        # nginx's ceiling: zramd's PUT against nginx's GET of the same page as a file (as before); and against
        # nginx storing the page as a file (WebDAV PUT)
        res["put_vs_nginx"] = worse("put", "nginx", "get")
        res["put_vs_nginx_dav_put"] = worse("put", "nginx")
        res["put_vs_memcached"] = worse("put", "memcached")
        res["put_vs_redis"] = worse("put", "redis")
        b = t["batch64"]
        res["batch_mb_s_vs_redis_mget"] = b["zramd"]["mb_s"] / b["redis"]["mb_s"]
        res["batch_mb_s_vs_memcached_multiget"] = b["zramd"]["mb_s"] / b["memcached"]["mb_s"]
        res["batch_mb_s_vs_nginx_256k_file"] = b["zramd"]["mb_s"] / b["nginx"]["mb_s"]
        # the loader's CPU per request over the server's (each server's single-page runs, medians)
        res["loader_over_server_cpu_max"] = max(v["loader_over_server_cpu"] for v in t["loader"].values())
        print("\n| server | op | req/s c16 | req/s c64 | server µs CPU/req c16 | c64 | loader µs CPU/req c16 | c64 | p99 µs c16 | c64 |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name in SERVERS:
            for op in OPS:
                x = [t[name][op][f"c{c}"] for c in CONNS]
                print(f"| {name} | {op} | " + " | ".join(f"{v['req_s']:.0f}" for v in x) + " | "
                      + " | ".join(f"{v['server_cpu_us_per_req']:.1f}" for v in x) + " | "
                      + " | ".join(f"{v['loader_cpu_us_per_req']:.1f}" for v in x) + " | "
                      + " | ".join(f"{v['p99_us']:.0f}" for v in x) + " |")
    if "latency" in res:
        idle = res["latency"]["idle"]["p99_us"]
        for op in ("recompress", "writeback", "compact"):
            res[f"p99_{op}_vs_idle"] = res["latency"][op]["p99_us"] / idle
    res["wall_seconds"] = time.time() - t_start
    res["loadavg_end"] = os.getloadavg()[0]
    for k in sorted(res):
        if isinstance(res[k], float):
            print(f"{k} = {res[k]:.3f}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    json.dump(res, open(args.out, "w"), indent=2, sort_keys=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
