"""Writeback, recompression, idle and compact driven as one drives zram's sysfs (`echo type=idle > writeback`)."""

import pytest

from conftest import PAGE


def flags(server, i):
    r = server.http.head(f"/dev/zram0/pages/{i}")
    assert r.status_code == 200, (i, r.status_code)
    return r.headers["X-Zram-Flags"], int(r.headers["X-Zram-Compressed-Size"]), int(r.headers["X-Zram-Priority"])


def test_writeback_without_backing_dev_is_409_enodev(server, corpus):
    server.http.put("/dev/zram0/pages/0", data=corpus.compressible(1)[0])
    for body in ["idle", "type=huge", "page_index=0"]:
        r = server.put_attr("zram0", "writeback", body)
        assert r.status_code == 409, (body, r.status_code)
        assert r.text == "zramd: ENODEV: zram0 has no backing_dev\n"


def test_idle_then_writeback_idle(wb_server, corpus):
    s = wb_server
    assert s.attr("zram0", "backing_dev") == "zram0-bd.sqlite\n"
    pages = corpus.compressible(6) + corpus.huge(2)
    assert s.http.put("/dev/zram0/pages?from=0", data=b"".join(pages)).status_code == 204
    assert s.attr("zram0", "bd_stat") == "       0        0        0\n"
    assert s.put_attr("zram0", "idle", "all").status_code == 204
    assert all(flags(s, i)[0][3] == "i" for i in range(8))
    # Touch slot 2: no longer idle, stays in memory.
    assert s.http.get("/dev/zram0/pages/2").content == pages[2]
    before = s.stat("zram0", "mm_stat")
    r = s.http.put("/sys/block/zram0/writeback", data="type=idle")
    assert r.status_code == 204, r.text
    bd = s.stat("zram0", "bd_stat")
    assert bd[0] == 7 and bd[2] == 7, bd  # bd_count, bd_writes (4 KiB units)
    assert flags(s, 2)[0] == "......"
    for i in (0, 1, 3, 6, 7):
        f, size, _ = flags(s, i)
        assert f[1] == "w", (i, f)
    after = s.stat("zram0", "mm_stat")
    assert after[1] < before[1]  # compr_data_size dropped
    assert after[0] == before[0]  # orig_data_size unchanged: the pages are still stored
    # Every page reads back exact, from SQLite where written back; reads count in bd_reads.
    for i, page in enumerate(pages):
        assert s.http.get(f"/dev/zram0/pages/{i}").content == page, i
    assert s.stat("zram0", "bd_stat")[1] == 7
    assert s.http.get("/dev/zram0/pages?from=0&count=8").content == b"".join(pages)
    # block_state shows it too.
    state = s.http.get("/sys/kernel/debug/zram/zram0/block_state").text.splitlines()
    assert len(state) == 8
    assert state[0].split()[0] == "0" and state[0].split()[2][1] == "w"
    # Discarding a written-back page frees its block.
    assert s.http.delete("/dev/zram0/pages/0").status_code == 204
    assert s.stat("zram0", "bd_stat")[0] == 6


def test_writeback_by_page_index_and_huge(wb_server, corpus):
    s = wb_server
    pages = corpus.compressible(10)
    huge = corpus.huge(3)
    s.http.put("/dev/zram0/pages?from=0", data=b"".join(pages))
    s.http.put("/dev/zram0/pages?from=20", data=b"".join(huge))
    r = s.put_attr("zram0", "writeback", "page_index=1 page_indexes=4-6 page_index=9")
    assert r.status_code == 204, r.text
    written = [i for i in range(10) if flags(s, i)[0][1] == "w"]
    assert written == [1, 4, 5, 6, 9]
    assert s.put_attr("zram0", "writeback", "huge").status_code == 204
    # As in zram, a written-back slot is no longer huge (zram_free_page clears ZRAM_HUGE).
    assert [flags(s, 20 + i)[0][:2] for i in range(3)] == [".w"] * 3
    assert s.stat("zram0", "bd_stat")[0] == 8
    for i, page in enumerate(pages):
        assert s.http.get(f"/dev/zram0/pages/{i}").content == page
    for i, page in enumerate(huge):
        assert s.http.get(f"/dev/zram0/pages/{20 + i}").content == page
    r = s.put_attr("zram0", "writeback", f"page_index={64 << 20}")
    assert r.status_code == 400 and r.text.startswith("zramd: ERANGE: ")


def test_writeback_limit_exhausted_is_503(wb_server, corpus):
    s = wb_server
    s.http.put("/dev/zram0/pages?from=0", data=b"".join(corpus.compressible(5)))
    s.put_attr("zram0", "idle", "all")
    assert s.put_attr("zram0", "writeback_limit_enable", "1").status_code == 204
    assert s.attr("zram0", "writeback_limit") == "0\n"
    r = s.put_attr("zram0", "writeback", "idle")
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "1"
    assert r.text.startswith("zramd: EIO: writeback_limit is exhausted")
    assert s.stat("zram0", "bd_stat")[0] == 0
    # A budget as large as the work lets it all through and is used up.
    assert s.put_attr("zram0", "writeback_limit", "5").status_code == 204
    assert s.put_attr("zram0", "writeback", "idle").status_code == 204
    assert s.stat("zram0", "bd_stat")[0] == 5
    assert s.attr("zram0", "writeback_limit") == "0\n"
    # Switched off, the limit no longer applies.
    s.http.put("/dev/zram0/pages/7", data=corpus.compressible(8)[7])
    assert s.put_attr("zram0", "writeback_limit_enable", "0").status_code == 204
    assert s.put_attr("zram0", "writeback", "page_index=7").status_code == 204
    assert s.stat("zram0", "bd_stat")[0] == 6


def test_writeback_limit_smaller_than_a_batch_writes_what_it_allows(wb_server, corpus):
    s = wb_server
    s.http.put("/dev/zram0/pages?from=0", data=b"".join(corpus.compressible(5)))
    s.put_attr("zram0", "idle", "all")
    assert s.put_attr("zram0", "writeback_limit_enable", "1").status_code == 204
    assert s.put_attr("zram0", "writeback_limit", "2").status_code == 204
    s.put_attr("zram0", "writeback", "idle")
    # zram spends the budget page by page: two pages go to the backing device.
    assert s.stat("zram0", "bd_stat")[0] == 2
    assert s.attr("zram0", "writeback_limit") == "0\n"


def test_compressed_writeback(zramd_factory, corpus):
    s = zramd_factory("--disksize", "0")
    for attr, body in [("backing_dev", "cwb.sqlite"), ("compressed_writeback", "1"), ("disksize", "16M")]:
        assert s.put_attr("zram0", attr, body).status_code == 204
    pages = corpus.compressible(4)
    s.http.put("/dev/zram0/pages?from=0", data=b"".join(pages))
    s.put_attr("zram0", "idle", "all")
    assert s.put_attr("zram0", "writeback", "type=idle").status_code == 204
    assert s.stat("zram0", "bd_stat")[0] == 4
    for i, page in enumerate(pages):
        assert s.http.get(f"/dev/zram0/pages/{i}").content == page


def test_recompress_with_secondary_algorithm(zramd_factory, corpus):
    s = zramd_factory("--disksize", "0", "--backing-dev", "rc.sqlite")
    # As zram: configure before disksize.
    for attr, body in [("comp_algorithm", "lz4"), ("recomp_algorithm", "algo=zstd priority=1"),
                       ("algorithm_params", "priority=1 level=9"), ("disksize", "32M")]:
        r = s.put_attr("zram0", attr, body)
        assert r.status_code == 204, (attr, r.text)
    pages = corpus.incompressible_ish(16) + corpus.compressible(16)
    assert s.http.put("/dev/zram0/pages?from=0", data=b"".join(pages)).status_code == 204
    before = s.stat("zram0", "mm_stat")
    assert s.put_attr("zram0", "idle", "all").status_code == 204
    r = s.put_attr("zram0", "recompress", "type=idle")
    assert r.status_code == 204, r.text
    debug = s.attr("zram0", "debug_stat").split()
    attempts, recompressed = int(debug[2]), int(debug[3])
    assert attempts > 0 and recompressed > 0, debug
    infos = [flags(s, i) for i in range(32)]
    assert sum(1 for f, _, p in infos if p == 1 and f[4] == "r") == recompressed
    assert s.stat("zram0", "mm_stat")[1] < before[1]  # compr_data_size shrank
    for i, page in enumerate(pages):
        assert s.http.get(f"/dev/zram0/pages/{i}").content == page, i
    # Then write the idle rest back; still exact.
    s.put_attr("zram0", "idle", "all")
    assert s.put_attr("zram0", "writeback", "type=idle").status_code == 204
    assert s.stat("zram0", "bd_stat")[0] == 32
    assert s.http.get("/dev/zram0/pages?from=0&count=32").content == b"".join(pages)
    # Naming an algorithm that is not a secondary one is EINVAL.
    r = s.put_attr("zram0", "recompress", "type=idle algo=deflate")
    assert r.status_code == 400


def test_recompress_huge_with_threshold_and_max_pages(zramd_factory, corpus):
    s = zramd_factory("--disksize", "0")
    for attr, body in [("recomp_algorithm", "algo=zstd priority=2"), ("disksize", "8M")]:
        assert s.put_attr("zram0", attr, body).status_code == 204
    pages = corpus.huge(4)
    s.http.put("/dev/zram0/pages?from=0", data=b"".join(pages))
    assert s.put_attr("zram0", "recompress", "type=huge max_pages=2 threshold=3000 priority=2").status_code == 204
    assert int(s.attr("zram0", "debug_stat").split()[2]) == 2  # max_pages counts attempts
    for i, page in enumerate(pages):
        assert s.http.get(f"/dev/zram0/pages/{i}").content == page


def test_idle_by_age(server, corpus):
    server.http.put("/dev/zram0/pages/0", data=corpus.compressible(1)[0])
    assert server.put_attr("zram0", "idle", "3600").status_code == 204
    assert flags(server, 0)[0][3] == "."  # younger than an hour
    assert server.put_attr("zram0", "idle", "0").status_code == 204
    assert flags(server, 0)[0][3] == "i"


def test_compact(server, corpus):
    # Pages of one size class (the same page, compressed alike), so freeing 3 of 4 leaves sparse zspages.
    page = corpus.pages(0.2, 0.3, 1)[0]
    pages = [page] * 200
    server.http.put("/dev/zram0/pages?from=0", data=b"".join(pages))
    for i in range(0, 200):
        if i % 4:
            server.http.delete(f"/dev/zram0/pages/{i}")
    used = server.stat("zram0", "mm_stat")[2]
    assert server.put_attr("zram0", "compact", "1").status_code == 204
    mm = server.stat("zram0", "mm_stat")
    assert mm[6] > 0 and mm[2] < used  # pages_compacted, mem_used_total
    for i in range(0, 200, 4):
        assert server.http.get(f"/dev/zram0/pages/{i}").content == pages[i]
    assert server.http.post("/sys/block/zram0/compact", data="").status_code == 204
