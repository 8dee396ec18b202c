"""/sys/class/zram-control (hot_add, hot_remove), the debugfs views, /healthz."""

import re

from conftest import PAGE


def test_hot_add_and_hot_remove(server, corpus):
    r = server.http.post("/sys/class/zram-control/hot_add")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.text == "1\n"
    assert server.http.get("/sys/block").json() == ["zram0", "zram1"]
    # A new device is uninitialised, as after hot_add in the kernel.
    assert server.attr("zram1", "initstate") == "0\n"
    assert server.attr("zram1", "disksize") == "0\n"
    assert server.put_attr("zram1", "disksize", "4M").status_code == 204
    page, = corpus.compressible(1)
    assert server.http.put("/dev/zram1/pages/3", data=page).status_code == 204
    assert server.http.get("/dev/zram1/pages/3").content == page
    assert server.http.post("/sys/class/zram-control/hot_add").text == "2\n"
    # hot_remove takes the id as `echo` writes it.
    r = server.http.post("/sys/class/zram-control/hot_remove", data="1\n")
    assert r.status_code == 204, r.text
    assert server.http.get("/sys/block").json() == ["zram0", "zram2"]
    assert server.http.get("/dev/zram1/pages/3").status_code == 404
    assert server.http.get("/sys/block/zram1/disksize").status_code == 404
    # The lowest free id is reused.
    assert server.http.post("/sys/class/zram-control/hot_add").text == "1\n"
    assert server.attr("zram1", "disksize") == "0\n"
    assert server.http.put("/sys/class/zram-control/hot_remove", data="2").status_code == 204
    assert server.http.get("/sys/block").json() == ["zram0", "zram1"]


def test_hot_remove_errors(server):
    r = server.http.post("/sys/class/zram-control/hot_remove", data="7")
    assert r.status_code == 404
    assert r.text == "zramd: ENODEV: there is no zram7\n"
    for body in ["abc", "", "-1", "zram0"]:
        r = server.http.post("/sys/class/zram-control/hot_remove", data=body)
        assert r.status_code == 400, body
        assert r.text.startswith("zramd: EINVAL: hot_remove takes a device id")
    assert server.http.get("/sys/block").json() == ["zram0"]


def test_control_wrong_methods_are_405(server):
    r = server.http.get("/sys/class/zram-control/hot_add")
    assert r.status_code == 405
    assert r.headers["Allow"] == "POST"
    assert "reading hot_add creates a device, so over HTTP it takes POST" in r.text
    assert server.http.head("/sys/class/zram-control/hot_add").status_code == 405
    assert server.http.put("/sys/class/zram-control/hot_add").status_code == 405
    r = server.http.get("/sys/class/zram-control/hot_remove")
    assert r.status_code == 405
    assert r.headers["Allow"] == "POST, PUT"
    # Nothing was created by any of that.
    assert server.http.get("/sys/block").json() == ["zram0"]


def test_block_state(server, corpus):
    a, b = corpus.compressible(2)
    huge, = corpus.huge(1)
    server.http.put("/dev/zram0/pages/0", data=a)
    server.http.put("/dev/zram0/pages/5", data=bytes(PAGE))
    server.http.put("/dev/zram0/pages/17", data=huge)
    server.http.put("/dev/zram0/pages/1000", data=b)
    server.put_attr("zram0", "idle", "all")
    r = server.http.get("/sys/kernel/debug/zram/zram0/block_state")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    lines = r.text.splitlines(keepends=True)
    assert len(lines) == 4
    line = re.compile(r"^ {0,11}(\d+) {1,12}(\d+)\.(\d{6}) ([s.][w.][h.][i.][r.][n.])\n$")
    parsed = [line.match(x) for x in lines]
    assert all(parsed), lines
    assert [(int(m.group(1)), m.group(4)) for m in parsed] == [
        (0, "...i.."), (5, "s....."), (17, "..hi.."), (1000, "...i..")]
    assert all(len(x) == 12 + 1 + 12 + 7 + 1 + 6 + 1 for x in lines)  # %12lu %12llu.%06lu %6s\n
    assert server.http.head("/sys/kernel/debug/zram/zram0/block_state").status_code == 200


def test_zsmalloc_classes(server, corpus):
    pages = corpus.compressible(50)
    server.http.put("/dev/zram0/pages?from=0", data=b"".join(pages))
    r = server.http.get("/sys/kernel/debug/zsmalloc/zram0/classes")
    assert r.status_code == 200
    lines = r.text.splitlines()
    assert lines[0].split() == ["class", "size", "10%", "20%", "30%", "40%", "50%", "60%", "70%", "80%", "90%",
                                "99%", "100%", "obj_allocated", "obj_used", "pages_used", "pages_per_zspage",
                                "freeable"]
    assert lines[-1].split()[0] == "Total"
    rows = [x.split() for x in lines[1:-1]]
    assert all(len(row) == 18 for row in rows)
    assert int(rows[0][1]) == 32  # the smallest class
    sizes = [int(row[1]) for row in rows]
    assert sizes == sorted(sizes)
    assert sum(int(row[14]) for row in rows) == 50  # obj_used: one object per page
    assert int(lines[-1].split()[-3]) == 50  # Total obj_used
    used_chunks = sum(int(row[15]) for row in rows)
    assert used_chunks * PAGE == server.stat("zram0", "mm_stat")[2]  # pages_used = mem_used_total


def test_debug_views_errors(server, zramd_factory):
    for path in ["/sys/kernel/debug/zram/zram4/block_state", "/sys/kernel/debug/zsmalloc/zram4/classes"]:
        r = server.http.get(path)
        assert r.status_code == 404
        assert r.text == "zramd: ENODEV: there is no zram4\n"
    for path in ["/sys/kernel/debug/zram/zram0/nope", "/sys/kernel/debug/zsmalloc/zram0", "/sys/kernel/debug"]:
        assert server.http.get(path).status_code == 404, path
    r = server.http.delete("/sys/kernel/debug/zram/zram0/block_state")
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"
    r = server.http.put("/sys/kernel/debug/zsmalloc/zram0/classes", data="x")
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"
    cold = zramd_factory("--disksize", "0")
    for path in ["/sys/kernel/debug/zram/zram0/block_state", "/sys/kernel/debug/zsmalloc/zram0/classes"]:
        r = cold.http.get(path)
        assert r.status_code == 400
        assert r.text.startswith("zramd: EINVAL: zram0 is not initialised")


def test_healthz(server):
    r = server.http.get("/healthz")
    assert r.status_code == 200
    assert r.text == "ok\n"
    assert server.http.head("/healthz").status_code == 200
    for method in ["POST", "PUT", "DELETE"]:
        r = server.http.request(method, "/healthz")
        assert r.status_code == 405, method
        assert r.headers["Allow"] == "GET, HEAD"
