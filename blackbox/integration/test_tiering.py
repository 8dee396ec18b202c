"""The tiering extensions (issue 12), black-box: automatic writeback at mem_limit, promotion
and eviction, with real SQLite files and concurrent clients. All off by default."""

import subprocess
import threading
import time

import requests

from conftest import PAGE

MIB = 1024 * 1024


def wait_for(condition, seconds=15.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_cache_that_never_refuses_a_write(zramd_factory, corpus):
    """mem_limit 4 MiB, automatic writeback on, 64 MiB of corpus pages from 16 clients: no request
    fails, memory stays under the limit (plus one zspage), every page reads back byte-exact, and
    bd_stat agrees with a sqlite3 count of the file."""
    s = zramd_factory("--disksize", "128M", "--backing-dev", "bd.sqlite", "--mem-limit", "4M")
    assert s.put_attr("zram0", "auto_writeback", "enable=1").status_code == 204
    pool = corpus.compressible(3000) + corpus.incompressible_ish(500) + corpus.huge(200)
    total = 64 * MIB // PAGE
    failures = []

    def client(k):
        with requests.Session() as http:
            for i in range(k, total, 16):
                r = http.put(s.url(f"/dev/zram0/pages/{i}"), data=pool[i % len(pool)], timeout=60)
                if r.status_code != 204:
                    failures.append((i, r.status_code, r.text))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - t0
    assert not failures, failures[:5]
    mm = s.stat("zram0", "mm_stat")
    limit = 4 * MIB
    assert mm[3] == limit
    assert mm[4] <= limit + 8 * PAGE * 4, f"mem_used_max {mm[4]} over the limit by more than one zspage"
    assert mm[0] == total * PAGE
    assert mm[2] <= limit
    tier = s.stat("zram0", "tier_stat")
    print(f"64 MiB in {seconds:.1f} s from 16 clients; mm_stat {mm}; tier_stat {tier}")
    assert tier[0] > 0, "the background writer ran"
    # Past the high watermark (95 %), the background writer takes memory under the low one (85 %).
    filler = corpus.compressible(3000)
    before = tier[0]
    added = 0
    while s.stat("zram0", "tier_stat")[0] == before:
        assert added < 3000, "memory never crossed the high watermark"
        assert s.http.put(f"/dev/zram0/pages/{total + added}", data=filler[(total + added) % 3000]).status_code == 204
        added += 1
    assert wait_for(lambda: s.stat("zram0", "mm_stat")[2] <= limit * 85 // 100 + 8 * PAGE), s.attr("zram0", "mm_stat")
    total += added
    for i in range(0, total, 7):
        r = s.http.get(f"/dev/zram0/pages/{i}")
        expected = pool[i % len(pool)] if i < total - added else filler[i % 3000]
        assert r.status_code == 200 and r.content == expected, i
    assert s.stat("zram0", "io_stat")[1] == 0  # failed_writes
    metrics = s.http.get("/metrics").text
    assert 'zramd_auto_writeback_enabled{device="zram0"} 1' in metrics
    assert 'zramd_writes_to_backing_pages_total{device="zram0"}' in metrics
    bd_count = s.stat("zram0", "bd_stat")[0]
    # The server holds its store exclusively (as zram its backing device): count once it is gone.
    assert s.stop() == 0
    rows = subprocess.run(["sqlite3", str(s.data_dir / "zram0-bd.sqlite"), "SELECT count(*) FROM blocks"],
                          check=True, capture_output=True, text=True).stdout.strip()
    assert int(rows) == bd_count, (rows, bd_count)


def test_without_a_backing_store_it_is_still_507_saying_why(zramd_factory, corpus):
    s = zramd_factory("--disksize", "64M", "--mem-limit", "256K")
    assert s.put_attr("zram0", "auto_writeback", "1").status_code == 204
    statuses = [s.http.put(f"/dev/zram0/pages/{i}", data=p) for i, p in enumerate(corpus.huge(100))]
    refused = [r for r in statuses if r.status_code == 507]
    assert refused and refused[0].text.startswith("zramd: ENOMEM: mem_limit (262144 bytes) reached"), refused[:1]


def test_promotion_brings_back_a_page_read_twice(wb_server, corpus):
    s = wb_server
    pages = corpus.compressible(8)
    assert s.http.put("/dev/zram0/pages?from=0", data=b"".join(pages)).status_code == 204
    assert s.put_attr("zram0", "writeback", "page_indexes=0-7").status_code == 204
    assert s.put_attr("zram0", "promotion", "enable=1 window=30").status_code == 204
    assert s.http.get("/dev/zram0/pages/5").content == pages[5]
    assert "w" in s.http.head("/dev/zram0/pages/5").headers["X-Zram-Flags"]
    assert s.http.get("/dev/zram0/pages/5").content == pages[5]
    assert "w" not in s.http.head("/dev/zram0/pages/5").headers["X-Zram-Flags"]
    assert s.stat("zram0", "tier_stat")[1] == 1  # promoted
    assert s.http.get("/sys/block/zram0").json()["promotion"] == {"enable": 1, "window": 30}


def test_eviction_drops_the_coldest_and_keeps_what_was_read(zramd_factory, corpus):
    s = zramd_factory("--disksize", "64M", "--mem-limit", "1M")
    assert s.put_attr("zram0", "eviction", "enable=1").status_code == 204
    pool = corpus.compressible(3000)
    for start in range(0, 2000, 250):
        r = s.http.put(f"/dev/zram0/pages?from={start}", data=b"".join(pool[start:start + 250]))
        assert r.status_code == 204, r.text
    evicted = s.stat("zram0", "tier_stat")[3]
    assert evicted > 0
    present = [i for i in range(2000) if s.http.head(f"/dev/zram0/pages/{i}").status_code == 200]
    kept = present[:25]
    # Access times are kept in whole seconds: read the survivors in a later second than
    # the pages around them were written, and write the next pages in a later one still.
    time.sleep(1.1)
    for i in kept:
        assert s.http.get(f"/dev/zram0/pages/{i}").content == pool[i]
    time.sleep(1.1)
    assert s.http.put("/dev/zram0/pages?from=2000", data=b"".join(pool[2000:2100])).status_code == 204
    for i in kept:
        assert s.http.get(f"/dev/zram0/pages/{i}").status_code == 200, f"slot {i} was read: it survives"
    missing = sum(1 for i in range(2100) if s.http.head(f"/dev/zram0/pages/{i}").status_code == 404)
    assert missing == s.stat("zram0", "tier_stat")[3]
    r = s.put_attr("zram0", "eviction", "enable=2")
    assert r.status_code == 400 and r.text.startswith("zramd: EINVAL: ")
