"""/dev/zram<id>/pages: single pages and batches, byte for byte, with real corpus pages."""

from conftest import ERROR_BODY, PAGE


def test_put_get_round_trip_exact(server, corpus):
    pages = corpus.compressible(8) + corpus.incompressible_ish(4) + corpus.huge(2)
    for i, page in enumerate(pages):
        r = server.http.put(f"/dev/zram0/pages/{i}", data=page)
        assert r.status_code == 204, r.text
        assert r.content == b""
    for i, page in enumerate(pages):
        r = server.http.get(f"/dev/zram0/pages/{i}")
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "application/octet-stream"
        assert int(r.headers["Content-Length"]) == PAGE
        assert r.content == page, f"slot {i} differs"
    mm = server.stat("zram0", "mm_stat")
    assert mm[0] == len(pages) * PAGE  # orig_data_size
    assert 0 < mm[1] < len(pages) * PAGE  # compr_data_size
    assert mm[7] >= 2  # huge_pages: the two incompressible pages


def test_overwrite_replaces_content(server, corpus):
    a, b = corpus.compressible(2)
    assert server.http.put("/dev/zram0/pages/3", data=a).status_code == 204
    assert server.http.put("/dev/zram0/pages/3", data=b).status_code == 204
    assert server.http.get("/dev/zram0/pages/3").content == b
    assert server.stat("zram0", "mm_stat")[0] == PAGE


def test_same_filled_page(server):
    page = b"\xab\xcd\xef\x01\x23\x45\x67\x89" * (PAGE // 8)
    assert server.http.put("/dev/zram0/pages/9", data=page).status_code == 204
    assert server.http.get("/dev/zram0/pages/9").content == page
    mm = server.stat("zram0", "mm_stat")
    assert mm[5] == 1  # same_pages
    head = server.http.head("/dev/zram0/pages/9")
    assert head.headers["X-Zram-Flags"] == "s....."
    assert head.headers["X-Zram-Compressed-Size"] == "0"


def test_head_headers(server, corpus):
    page, = corpus.compressible(1)
    huge, = corpus.huge(1)
    server.http.put("/dev/zram0/pages/0", data=page)
    server.http.put("/dev/zram0/pages/1", data=huge)
    r = server.http.head("/dev/zram0/pages/0")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["Content-Length"] == str(PAGE)
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["X-Zram-Flags"] == "......"
    assert 0 < int(r.headers["X-Zram-Compressed-Size"]) < PAGE
    assert r.headers["X-Zram-Priority"] == "0"
    r = server.http.head("/dev/zram0/pages/1")
    assert r.headers["X-Zram-Flags"] == "..h..."
    assert r.headers["X-Zram-Compressed-Size"] == str(PAGE)
    # HEAD is not an access: idle survives it, GET clears it.
    assert server.put_attr("zram0", "idle", "all").status_code == 204
    assert server.http.head("/dev/zram0/pages/0").headers["X-Zram-Flags"] == "...i.."
    assert server.http.head("/dev/zram0/pages/0").headers["X-Zram-Flags"] == "...i.."
    server.http.get("/dev/zram0/pages/0")
    assert server.http.head("/dev/zram0/pages/0").headers["X-Zram-Flags"] == "......"
    # An empty slot: 404 without a body.
    r = server.http.head("/dev/zram0/pages/2")
    assert r.status_code == 404
    assert r.content == b""


def test_empty_slot_is_404(server):
    r = server.http.get("/dev/zram0/pages/5")
    assert r.status_code == 404
    assert r.text == "zramd: ENOENT: slot 5 holds no page\n"


def test_delete_is_idempotent_and_counts_notify_free(server, corpus):
    page, = corpus.compressible(1)
    server.http.put("/dev/zram0/pages/4", data=page)
    assert server.http.delete("/dev/zram0/pages/4").status_code == 204
    assert server.http.get("/dev/zram0/pages/4").status_code == 404
    assert server.http.delete("/dev/zram0/pages/4").status_code == 204
    assert server.http.delete("/dev/zram0/pages/4000").status_code == 204
    io = server.stat("zram0", "io_stat")
    assert io[3] == 1  # notify_free: only the slot that held a page
    assert server.stat("zram0", "mm_stat")[0] == 0


def test_wrong_length_and_out_of_range_are_400_and_invalid_io(server, corpus):
    page, = corpus.compressible(1)
    slots = 64 * 1024 * 1024 // PAGE
    cases = [
        ("PUT", "/dev/zram0/pages/0", page[:100], "EINVAL"),
        ("PUT", "/dev/zram0/pages/0", page + b"x", "EINVAL"),
        ("PUT", "/dev/zram0/pages/0", b"", "EINVAL"),
        ("PUT", f"/dev/zram0/pages/{slots}", page, "ERANGE"),
        ("GET", f"/dev/zram0/pages/{slots}", None, "ERANGE"),
        ("DELETE", f"/dev/zram0/pages/{slots + 5}", None, "ERANGE"),
        ("GET", "/dev/zram0/pages/-1", None, "ERANGE"),
    ]
    for method, path, body, errno in cases:
        r = server.http.request(method, path, data=body)
        assert r.status_code == 400, (method, path, r.status_code, r.text)
        assert r.text.startswith(f"zramd: {errno}: "), (method, path, r.text)
        assert ERROR_BODY.match(r.text)
    assert server.stat("zram0", "io_stat")[2] == len(cases)  # invalid_io
    # Not an integer.
    for path in ["/dev/zram0/pages/abc", "/dev/zram0/pages/1.5", "/dev/zram0/pages/0x10"]:
        r = server.http.get(path)
        assert r.status_code == 400, (path, r.status_code)
        assert r.text.startswith("zramd: EINVAL: ")
    # Nothing was stored.
    assert server.stat("zram0", "mm_stat")[0] == 0


def test_unknown_device_is_404(server, corpus):
    page, = corpus.compressible(1)
    for method, path in [("GET", "/dev/zram7/pages/0"), ("PUT", "/dev/zram7/pages/0"), ("HEAD", "/dev/zram7/pages/0"),
                         ("DELETE", "/dev/zram7/pages/0"), ("GET", "/dev/zram7/pages?from=0&count=1"),
                         ("GET", "/dev/zram00/pages/0"), ("GET", "/dev/sda/pages/0")]:
        r = server.http.request(method, path, data=page if method == "PUT" else None)
        assert r.status_code == 404, (method, path, r.status_code)
        if method != "HEAD":
            assert r.text.startswith("zramd: ENODEV: there is no "), r.text


def test_unknown_dev_paths_are_404(server):
    for path in ["/dev", "/dev/zram0", "/dev/zram0/blocks/0", "/dev/zram0/pages/1/2", "/nope", "/"]:
        r = server.http.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert ERROR_BODY.match(r.text), r.text


def test_wrong_methods_on_pages_are_405(server):
    for method, path, allow in [("POST", "/dev/zram0/pages/0", "GET, HEAD, PUT, DELETE"),
                                ("PATCH", "/dev/zram0/pages/0", "GET, HEAD, PUT, DELETE"),
                                ("OPTIONS", "/dev/zram0/pages/0", "GET, HEAD, PUT, DELETE"),
                                ("DELETE", "/dev/zram0/pages?from=0", "GET, HEAD, PUT"),
                                ("POST", "/dev/zram0/pages?from=0", "GET, HEAD, PUT")]:
        r = server.http.request(method, path, data=b"")
        assert r.status_code == 405, (method, path, r.status_code)
        assert r.headers["Allow"] == allow
        assert r.text.startswith(f"zramd: EACCES: {method} is not allowed here")


def test_page_io_before_init_is_400(zramd_factory, corpus):
    s = zramd_factory("--disksize", "0")
    page, = corpus.compressible(1)
    r = s.http.put("/dev/zram0/pages/0", data=page)
    assert r.status_code == 400
    assert "not initialised" in r.text
    assert s.http.get("/dev/zram0/pages/0").status_code == 400


def test_batch_round_trip_exact(server, corpus):
    pages = corpus.compressible(20) + corpus.incompressible_ish(10) + corpus.huge(2)
    r = server.http.put("/dev/zram0/pages?from=100", data=b"".join(pages))
    assert r.status_code == 204, r.text
    r = server.http.get("/dev/zram0/pages?from=100&count=32")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert len(r.content) == 32 * PAGE
    assert r.content == b"".join(pages)
    # Each slot individually too.
    for i in (0, 17, 31):
        assert server.http.get(f"/dev/zram0/pages/{100 + i}").content == pages[i]
    assert server.stat("zram0", "mm_stat")[0] == 32 * PAGE


def test_batch_get_reads_empty_slots_as_zeros(server, corpus):
    a, b = corpus.compressible(2)
    server.http.put("/dev/zram0/pages/10", data=a)
    server.http.put("/dev/zram0/pages/13", data=b)
    r = server.http.get("/dev/zram0/pages?from=9&count=6")
    assert r.status_code == 200
    zero = bytes(PAGE)
    assert r.content == zero + a + zero + zero + b + zero
    # Reading empty slots is not an error and stores nothing.
    assert server.stat("zram0", "mm_stat")[0] == 2 * PAGE


def test_batch_head(server):
    r = server.http.head("/dev/zram0/pages?from=0&count=3")
    assert r.status_code == 200
    assert r.headers["Content-Length"] == str(3 * PAGE)


def test_batch_errors(server, corpus):
    page, = corpus.compressible(1)
    slots = 64 * 1024 * 1024 // PAGE
    cases = [
        ("PUT", "/dev/zram0/pages?from=0", page + page[:10], "EINVAL"),  # not whole pages
        ("PUT", "/dev/zram0/pages?from=0", b"", "EINVAL"),  # no page at all
        ("PUT", "/dev/zram0/pages", page, "EINVAL"),  # no from
        ("PUT", "/dev/zram0/pages?from=-3", page, "ERANGE"),
        ("PUT", "/dev/zram0/pages?from=x", page, "EINVAL"),
        ("GET", "/dev/zram0/pages?from=0", None, "EINVAL"),  # no count
        ("GET", "/dev/zram0/pages?from=0&count=0", None, "EINVAL"),
        ("GET", "/dev/zram0/pages?from=0&count=1&colour=red", None, "EINVAL"),
        ("GET", "/dev/zram0/pages?from=0&count=999999", None, "E2BIG"),  # over --max-batch-pages
        ("GET", f"/dev/zram0/pages?from={slots - 1}&count=2", None, "ERANGE"),
        ("PUT", f"/dev/zram0/pages?from={slots - 1}", page + page, "ERANGE"),
    ]
    for method, path, body, errno in cases:
        r = server.http.request(method, path, data=body)
        assert r.status_code == 400, (method, path, r.status_code, r.text)
        assert r.text.startswith(f"zramd: {errno}: "), (method, path, r.text)
    # A rejected batch changes nothing: the one that ran off the end wrote no page (issue 10
    # item 3); wrong-sized and out-of-range batches count in invalid_io like single pages.
    assert server.http.get(f"/dev/zram0/pages/{slots - 1}").status_code == 404
    assert server.stat("zram0", "io_stat")[2] == 5  # two bodies not whole pages, from=-3, two past the end
    assert server.stat("zram0", "mm_stat")[0] == 0


def test_mem_limit_reached_is_507(server, corpus):
    pages = corpus.huge(40)
    assert server.put_attr("zram0", "mem_limit", "64K").status_code == 204
    assert server.attr("zram0", "mem_limit") == "65536\n"
    statuses = [server.http.put(f"/dev/zram0/pages/{i}", data=p) for i, p in enumerate(pages)]
    codes = [r.status_code for r in statuses]
    assert 204 in codes and 507 in codes, codes
    first_refused = codes.index(507)
    assert all(c == 507 for c in codes[first_refused:]), codes
    assert statuses[first_refused].text.startswith("zramd: ENOMEM: mem_limit (65536 bytes) reached")
    failed_writes = server.stat("zram0", "io_stat")[1]
    assert failed_writes == codes.count(507)
    mm = server.stat("zram0", "mm_stat")
    assert mm[2] <= 65536  # mem_used_total under the limit
    # A refused write leaves the slot as it was; what was stored reads back exact.
    for i in range(first_refused):
        assert server.http.get(f"/dev/zram0/pages/{i}").content == pages[i]
    assert server.http.get(f"/dev/zram0/pages/{first_refused}").status_code == 404
    # A batch too: 507, with how many pages went in.
    r = server.http.put("/dev/zram0/pages?from=1000", data=b"".join(pages[:4]))
    assert r.status_code == 507
    assert "wrote 0 of 4 pages" in r.text
    # Lifting the limit lets writes in again.
    assert server.put_attr("zram0", "mem_limit", "0").status_code == 204
    assert server.http.put(f"/dev/zram0/pages/{first_refused}", data=pages[first_refused]).status_code == 204
