#!/usr/bin/env python3
"""make bench-tier: zramd tiering (auto_writeback + promotion over a SQLite backing store) against
memcached with extstore, same RAM budget, same keys and values, same loader, same run.

1. the corpus x4 (57,344 pages) is loaded into a zramd with no limit: its compressed size is
   mm_stat's compr_data_size; the RAM budget is --budget-fraction (25 %) of it, rounded down to whole
   MiB because memcached's -m takes MiB;
2. zramd: --mem-limit budget, --backing-dev in a temp dir on the local disk, auto_writeback
   (enable=1 high_watermark=95 low_watermark=85) and promotion (enable=1 window=60);
   memcached: -m budget -o ext_path=FILE:1024m plus --mc-ext (options that keep items on flash);
3. both loaded with every key (memcached: each key with a 10-byte value first, so the slab class
   of extstore's item headers gets its pages; the 4 KiB values over one connection; then GET
   every key and set again the evicted ones, until none is missing or --fill-passes run out);
4. a warm-up of --warmup s each, then --rounds interleaved rounds (zramd, memcached, ...) of
   --seconds/--rounds s: Zipf(--zipf) GETs with --put PUTs, closed loop, --conns connections,
   bench/loadgen/loadgen (C, epoll) for both protocols;
5. RSS of both servers sampled every 0.2 s while the rounds run.
Writes bench/results/tier.json.
"""
import argparse, http.client, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import PAGE, free_port, run_loadgen, start_zramd, stop, wait_tcp, zramd_attr, zramd_read  # noqa: E402

MiB = 1 << 20
PROCS = []


def rss_parts(pid):
    """VmRSS, RssAnon (the process's own memory) and RssFile (mapped binaries and libraries)."""
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k = line.split(":")[0]
        if k in ("VmRSS", "RssAnon", "RssFile"):
            out[k] = int(line.split()[1]) * 1024
    return out


def loadgen(args, proto, port, mode, seconds=0, conns=None):
    r = run_loadgen(
        args.loader, timeout=seconds + 600, proto=proto, port=port, keys=args.keys, values=args.corpus, mode=mode,
        conns=conns or args.conns, threads=args.threads, zipf=args.zipf, put=args.put, seed=args.seed,
        seconds=seconds if mode == "run" else None)
    r["get_req_s"] = r["gets"] / r["seconds"]
    return r


def mc_stats(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"stats\r\n")
    buf = b""
    while not buf.endswith(b"END\r\n"):
        buf += s.recv(1 << 16)
    s.close()
    out = {}
    for line in buf.decode().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "STAT":
            try:
                out[parts[1]] = int(parts[2])
            except ValueError:
                try:
                    out[parts[1]] = float(parts[2])
                except ValueError:
                    out[parts[1]] = parts[2]
    return out


def stat_fields(port, attr):
    return [int(x) for x in zramd_read(port, attr).split()]


def zramd_snapshot(port):
    mm = stat_fields(port, "mm_stat")
    bd = stat_fields(port, "bd_stat")
    tier = stat_fields(port, "tier_stat")
    return {"mm_stat": dict(zip(["orig_data_size", "compr_data_size", "mem_used_total", "mem_limit", "mem_used_max",
                                 "same_pages", "pages_compacted", "huge_pages", "huge_pages_since"], mm)),
            "bd_stat": dict(zip(["bd_count", "bd_reads", "bd_writes"], bd)),
            "tier_stat": dict(zip(["auto_written_back", "promoted", "writes_to_backing", "evicted", "auto_writeback_ms"], tier))}


class RssSampler(threading.Thread):
    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids, self.done = pids, threading.Event()
        self.max = {k: {"VmRSS": 0, "RssAnon": 0, "RssFile": 0} for k in pids}
        self.samples = {k: [] for k in pids}

    def run(self):
        while not self.done.is_set():
            for name, pid in self.pids.items():
                v = rss_parts(pid)
                for k in v:
                    self.max[name][k] = max(self.max[name][k], v[k])
                self.samples[name].append(v["VmRSS"])
            time.sleep(0.2)


def compressed_size(args, work):
    port = free_port()
    work = os.path.join(work, "nolimit")
    os.makedirs(work)
    z = start_zramd(args.zramd, work, port, str(args.keys * PAGE), log="zramd-nolimit.log")
    PROCS.append(z)
    r = loadgen(args, "http", port, "load", conns=16)
    assert r["failed"] == 0, r
    snap = zramd_snapshot(port)["mm_stat"]
    if not args.ram_reference:
        stop(z)
    return snap, port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zramd", required=True)
    ap.add_argument("--loader", required=True, help="the built bench/loadgen/loadgen.c")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=60, help="measured seconds per server, split over --rounds")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--budget-fraction", type=float, default=0.25)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--zipf", type=float, default=0.99)
    ap.add_argument("--put", type=float, default=0.10)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--mc-ext", default="ext_item_age=0,slab_automove_freeratio=0.10",
                    help="extra memcached -o options next to ext_path")
    ap.add_argument("--fill-passes", type=int, default=8)
    ap.add_argument("--no-ram-reference", dest="ram_reference", action="store_false",
                    help="skip the all-in-RAM zramd rounds")
    ap.add_argument("--workdir", default=None, help="parent of the temp dir (default: the system's, local disk here)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))

    corpus_pages = os.path.getsize(args.corpus) // PAGE
    args.keys = corpus_pages * args.copies
    work = tempfile.mkdtemp(prefix="zbench-tier-", dir=args.workdir)
    fs = subprocess.run(["stat", "-f", "-c", "%T", work], capture_output=True, text=True).stdout.strip()
    res = {"keys": args.keys, "corpus_pages": corpus_pages, "copies": args.copies, "zipf": args.zipf,
           "put_ratio": args.put, "conns": args.conns, "loader_threads": args.threads, "rounds": args.rounds,
           "seconds_per_server": args.seconds, "warmup_seconds": args.warmup, "workdir_fs": fs,
           "loader": "bench/loadgen/loadgen (C, epoll, closed loop, one request in flight per connection) for both "
                     "servers: HTTP/1.1 GET/PUT /dev/zram0/pages/K for zramd, text get/set key:%012d for memcached",
           "values": f"key k holds corpus page k % {corpus_pages}, written by the load and by every PUT; keys drawn "
                     "by Zipf rank, ranks mapped to keys by a seeded permutation"}
    t_start = time.time()
    try:
        # 1. compressed size and budget
        # the zramd with no limit stays up (unless --no-ram-reference) as a reference: every page in RAM,
        # same loader, same rounds; it separates what HTTP costs from what tiering costs
        mm, rport = compressed_size(args, work)
        budget_mib = int(args.budget_fraction * mm["compr_data_size"] // MiB)
        budget = budget_mib * MiB
        res.update(compressed_bytes=mm["compr_data_size"], compressed_mem_used_total=mm["mem_used_total"],
                   compressed_size_method="zramd lz4 with no mem_limit, corpus x%d loaded, mm_stat compr_data_size" % args.copies,
                   budget_bytes=budget, budget_mib=budget_mib)
        print(f"compressed {mm['compr_data_size']} B (mem_used_total {mm['mem_used_total']}); budget {budget_mib} MiB",
              flush=True)

        # 2. servers
        zport, mport = free_port(), free_port()
        z = start_zramd(args.zramd, work, zport, str(args.keys * PAGE),
                        ["--backing-dev", "tier.sqlite", "--mem-limit", str(budget), "--persist"], log="zramd-tier.log")
        PROCS.append(z)
        time.sleep(0.3)
        res["zramd_rss_started"] = rss_parts(z.pid)  # disksize set, nothing stored yet
        zramd_attr(zport, "auto_writeback", "enable=1 high_watermark=95 low_watermark=85")
        zramd_attr(zport, "promotion", "enable=1 window=60")
        user = ["-u", "root"] if os.geteuid() == 0 else []
        mc_argv = ["memcached", "-l", "127.0.0.1", "-p", str(mport), "-U", "0", "-m", str(budget_mib), "-t", "2",
                   "-c", "4096", *user, "-o", f"ext_path={work}/extstore:1024m" + (f",{args.mc_ext}" if args.mc_ext else "")]
        m = subprocess.Popen(mc_argv, stdout=open(os.path.join(work, "memcached.log"), "w"), stderr=subprocess.STDOUT)
        PROCS.append(m)
        wait_tcp(mport)
        time.sleep(0.3)
        res["memcached_rss_started"] = rss_parts(m.pid)
        res["zramd_command"] = (f"zramd --listen 127.0.0.1:PORT --disksize {args.keys * PAGE} --data-dir DIR "
                                f"--backing-dev tier.sqlite --mem-limit {budget} --persist; PUT auto_writeback 'enable=1 "
                                "high_watermark=95 low_watermark=85'; PUT promotion 'enable=1 window=60'")
        res["memcached_command"] = " ".join(mc_argv).replace(work, "DIR").replace(f"-p {mport}", "-p PORT")

        # 3. load
        t = time.time()
        zl = loadgen(args, "http", zport, "load", conns=16)
        res["zramd_load"] = {"seconds": time.time() - t, "failed": zl["failed"], "after": zramd_snapshot(zport)}
        t = time.time()
        # Every key with a 10-byte value first, so that the slab class of extstore's in-memory item headers
        # owns its ~6 pages before the 4 KiB values take the budget (memcached's automover does not move
        # them there within minutes); then the 4 KiB values over one connection, which lets the flusher keep
        # up; then GET every key and set the evicted ones again until none is missing.
        loadgen(args, "memcache", mport, "small", conns=16)
        ml = loadgen(args, "memcache", mport, "load", conns=1)
        fills = []
        for _ in range(args.fill_passes):
            time.sleep(1)
            f = loadgen(args, "memcache", mport, "fill", conns=1)
            fills.append(f["misses"])
            if f["misses"] == 0:
                break
        st = mc_stats(mport)
        res["memcached_load"] = {"seconds": time.time() - t, "failed": ml["failed"], "fill_pass_misses": fills,
                                 "curr_items": st.get("curr_items"), "evictions": st.get("evictions")}
        print(f"loaded: zramd {res['zramd_load']['after']}; memcached misses per fill pass {fills}, "
              f"curr_items {st.get('curr_items')}, evictions {st.get('evictions')}", flush=True)
        # let zramd's writer settle under the high watermark
        deadline = time.time() + 30
        while time.time() < deadline and zramd_snapshot(zport)["mm_stat"]["mem_used_total"] > 0.95 * budget:
            time.sleep(0.5)

        # 4. warm-up, then interleaved rounds
        warm = {"zramd": loadgen(args, "http", zport, "run", args.warmup),
                "memcached": loadgen(args, "memcache", mport, "run", args.warmup)}
        if args.ram_reference:
            warm["zramd_all_in_ram"] = loadgen(args, "http", rport, "run", args.warmup)
        res["warmup"] = {k: {x: v[x] for x in ("req_s", "p99_us", "failed")} for k, v in warm.items()}
        sampler = RssSampler({"zramd": z.pid, "memcached": m.pid})
        sampler.start()
        per = args.seconds / args.rounds
        rounds = {"zramd": [], "memcached": []}
        if args.ram_reference:
            rounds["zramd_all_in_ram"] = []
        zbefore, mbefore = zramd_snapshot(zport), mc_stats(mport)
        zram_gets = zram_bd_reads = 0
        for r in range(args.rounds):
            b = zramd_snapshot(zport)
            zr = loadgen(args, "http", zport, "run", per)
            a = zramd_snapshot(zport)
            zr["bd_reads"] = a["bd_stat"]["bd_reads"] - b["bd_stat"]["bd_reads"]
            zr["ram_hit_ratio"] = 1 - zr["bd_reads"] / zr["gets"] if zr["gets"] else None
            zram_gets += zr["gets"]
            zram_bd_reads += zr["bd_reads"]
            rounds["zramd"].append(zr)
            b = mc_stats(mport)
            mr = loadgen(args, "memcache", mport, "run", per)
            a = mc_stats(mport)
            mr["get_extstore"] = a["get_extstore"] - b["get_extstore"]
            mr["ram_hit_ratio"] = 1 - mr["get_extstore"] / mr["gets"] if mr["gets"] else None
            rounds["memcached"].append(mr)
            if args.ram_reference:
                rounds["zramd_all_in_ram"].append(loadgen(args, "http", rport, "run", per))
                x = rounds["zramd_all_in_ram"][-1]
                print(f"round {r + 1}: zramd all in RAM {x['req_s']:.0f} req/s p99 {x['p99_us']} µs failed {x['failed']}",
                      flush=True)
            print(f"round {r + 1}: zramd {zr['req_s']:.0f} req/s p99 {zr['p99_us']} µs failed {zr['failed']} "
                  f"RAM hits {zr['ram_hit_ratio']:.3f} | memcached {mr['req_s']:.0f} req/s p99 {mr['p99_us']} µs "
                  f"failed {mr['failed']} ({mr['first_error']}) RAM hits {mr['ram_hit_ratio']:.3f}", flush=True)
        sampler.done.set()
        sampler.join()
        zafter, mafter = zramd_snapshot(zport), mc_stats(mport)
        res["rounds"] = rounds
        res["zramd_before_rounds"], res["zramd_after_rounds"] = zbefore, zafter
        keep = ("curr_items", "evictions", "get_hits", "get_misses", "get_extstore", "recache_from_extstore",
                "miss_from_extstore", "extstore_objects_written", "extstore_objects_read", "extstore_objects_used",
                "extstore_bytes_used", "extstore_page_evictions", "extstore_objects_evicted", "limit_maxbytes", "bytes")
        res["memcached_before_rounds"] = {k: mbefore.get(k) for k in keep}
        res["memcached_after_rounds"] = {k: mafter.get(k) for k in keep}
        res["zramd_rss_max"], res["memcached_rss_max"] = sampler.max["zramd"]["VmRSS"], sampler.max["memcached"]["VmRSS"]
        res["zramd_rss_parts_max"], res["memcached_rss_parts_max"] = sampler.max["zramd"], sampler.max["memcached"]
        res["zramd_rss_median"] = statistics.median(sampler.samples["zramd"])
        res["memcached_rss_median"] = statistics.median(sampler.samples["memcached"])
        # Restart (--persist): SIGTERM saves the device into its store, a start restores it; the time from
        # SIGTERM until the new process answers a GET of a stored page, per GiB of pages stored.
        stored = zramd_snapshot(zport)["mm_stat"]["orig_data_size"]
        t = time.time()
        stop(z)
        saved = time.time() - t
        t = time.time()
        z = start_zramd(args.zramd, work, zport, str(args.keys * PAGE),
                        ["--backing-dev", "tier.sqlite", "--mem-limit", str(budget), "--persist"], log="zramd-restart.log")
        PROCS.append(z)
        conn = http.client.HTTPConnection("127.0.0.1", zport, timeout=60)
        conn.request("GET", "/dev/zram0/pages/0")
        first = conn.getresponse()
        first.read()
        ready = time.time() - t
        res.update(restart_stored_bytes=stored, restart_save_seconds=saved, restart_ready_seconds=ready,
                   restart_first_get_status=first.status,
                   restart_seconds_per_gib=(saved + ready) / (stored / (1 << 30)) if stored else None)
        with open(os.path.join(work, "zramd-restart.log")) as log:
            res["restart_log"] = [line.strip() for line in log if "restored" in line]
    finally:
        for p in PROCS:
            stop(p)
        shutil.rmtree(work, ignore_errors=True)

    med = {s: {k: statistics.median(r[k] for r in rounds[s]) for k in ("req_s", "get_req_s", "p50_us", "p99_us", "p999_us",
                                                                        "get_p99_us", "put_p99_us")}
           for s in rounds}
    res["median"] = med
    res["tier_get_req_s_vs_memcached_extstore"] = med["zramd"]["get_req_s"] / med["memcached"]["get_req_s"]
    res["tier_req_s_vs_memcached_extstore"] = med["zramd"]["req_s"] / med["memcached"]["req_s"]
    res["tier_p99_vs_memcached_extstore"] = med["zramd"]["p99_us"] / med["memcached"]["p99_us"]
    res["tier_get_p99_vs_memcached_extstore"] = med["zramd"]["get_p99_us"] / med["memcached"]["get_p99_us"]
    if "zramd_all_in_ram" in med:
        res["tier_req_s_vs_zramd_all_in_ram"] = med["zramd"]["req_s"] / med["zramd_all_in_ram"]["req_s"]
        res["tier_p99_vs_zramd_all_in_ram"] = med["zramd"]["p99_us"] / med["zramd_all_in_ram"]["p99_us"]
        res["zramd_all_in_ram_p99_vs_memcached_extstore"] = med["zramd_all_in_ram"]["p99_us"] / med["memcached"]["p99_us"]
    res["tier_round_ratios_req_s"] = [z["req_s"] / m["req_s"] for z, m in zip(rounds["zramd"], rounds["memcached"])]
    res["tier_ram_hit_ratio"] = 1 - zram_bd_reads / zram_gets
    mget = sum(r["gets"] for r in rounds["memcached"])
    res["memcached_ram_hit_ratio"] = 1 - sum(r["get_extstore"] for r in rounds["memcached"]) / mget
    res["tier_rss_over_budget"] = res["zramd_rss_max"] / budget
    res["memcached_rss_over_budget"] = res["memcached_rss_max"] / budget
    # the same without mapped binaries and libraries (Swift runtime + Foundation are ~23 MiB of zramd's RSS)
    res["tier_rss_anon_over_budget"] = res["zramd_rss_parts_max"]["RssAnon"] / budget
    res["memcached_rss_anon_over_budget"] = res["memcached_rss_parts_max"]["RssAnon"] / budget
    res["tier_failed_requests"] = (sum(r["failed"] for r in rounds["zramd"]) + warm["zramd"]["failed"]
                                   + res["zramd_load"]["failed"])
    res["memcached_failed_requests"] = sum(r["failed"] for r in rounds["memcached"]) + warm["memcached"]["failed"]
    res["wall_seconds"] = time.time() - t_start
    for k in sorted(res):
        if isinstance(res[k], (float, int)) and not isinstance(res[k], bool):
            print(f"{k} = {res[k]:.3f}" if isinstance(res[k], float) else f"{k} = {res[k]}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    json.dump(res, open(args.out, "w"), indent=2, sort_keys=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
