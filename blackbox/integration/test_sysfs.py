"""/sys/block and /sys/block/zram<id>[/<attr>]: formats, the JSON view, grammar errors, EBUSY, 405, 404."""

import re

import jsonschema
import pytest

from conftest import ERROR_BODY, PAGE

READABLE = ["disksize", "initstate", "comp_algorithm", "recomp_algorithm", "backing_dev", "compressed_writeback",
            "writeback_limit", "writeback_limit_enable", "writeback_batch_size", "mem_limit", "mem_used_max",
            "mm_stat", "io_stat", "bd_stat", "debug_stat", "auto_writeback", "promotion", "eviction", "tier_stat"]
WRITE_ONLY = ["reset", "algorithm_params", "recompress", "idle", "writeback", "compact"]
READ_ONLY = ["initstate", "mm_stat", "io_stat", "bd_stat", "debug_stat", "tier_stat"]
STAT = re.compile(r"^( {0,7}\d{1,}) ?")


def stat_line(n):
    return re.compile(r"^" + " ".join([r" *\d+"] * n) + r"\n$")


def test_device_list(server, zramd_factory):
    r = server.http.get("/sys/block")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == ["zram0"]
    three = zramd_factory("--num-devices", "3", "--disksize", "1M")
    assert three.http.get("/sys/block").json() == ["zram0", "zram1", "zram2"]
    assert three.http.get("/sys/block/").json() == ["zram0", "zram1", "zram2"]
    none = zramd_factory("--num-devices", "0")
    assert none.http.get("/sys/block").json() == []


def test_attribute_formats(server, corpus):
    for i, page in enumerate(corpus.compressible(3)):
        server.http.put(f"/dev/zram0/pages/{i}", data=page)
    a = lambda name: server.attr("zram0", name)  # noqa: E731
    assert a("disksize") == f"{64 << 20}\n"
    assert a("initstate") == "1\n"
    assert a("comp_algorithm") == "lzo [lz4] lz4hc zstd deflate\n"
    assert a("recomp_algorithm") == ""
    assert a("backing_dev") == "none\n"
    assert a("compressed_writeback") == "0\n"
    assert a("writeback_limit") == "0\n"
    assert a("writeback_limit_enable") == "0\n"
    assert a("writeback_batch_size") == "32\n"
    assert a("mem_limit") == "0\n"
    assert re.fullmatch(r"\d+\n", a("mem_used_max"))
    mm = a("mm_stat")
    assert stat_line(9).match(mm), mm
    # zram prints each field as %8llu, space-separated.
    assert len(mm) == 9 * 9, repr(mm)
    assert mm.startswith("   12288 ")
    assert stat_line(4).match(a("io_stat"))
    assert a("io_stat") == "       0        0        0        0\n"
    assert a("bd_stat") == "       0        0        0\n"
    assert re.fullmatch(r"version: 1\n *\d+ +\d+ +\d+ +\d+\n", a("debug_stat"))
    r = server.http.get("/sys/block/zram0/mm_stat")
    assert r.headers["Content-Type"].startswith("text/plain")
    r = server.http.head("/sys/block/zram0/mm_stat")
    assert r.status_code == 200 and r.content == b""


def test_json_view_matches_schema_and_attributes(server, contract, corpus):
    for i, page in enumerate(corpus.compressible(5) + corpus.huge(1)):
        server.http.put(f"/dev/zram0/pages/{i}", data=page)
    server.http.put("/dev/zram0/pages/9", data=bytes(PAGE))
    r = server.http.get("/sys/block/zram0")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    view = r.json()
    schema = {"$ref": "#/components/schemas/Device", "components": contract.spec["components"]}
    jsonschema.validate(view, schema, cls=jsonschema.Draft202012Validator)
    fields = ["orig_data_size", "compr_data_size", "mem_used_total", "mem_limit", "mem_used_max", "same_pages",
              "pages_compacted", "huge_pages", "huge_pages_since"]
    assert [view["mm_stat"][f] for f in fields] == server.stat("zram0", "mm_stat")
    assert view["mm_stat"]["orig_data_size"] == 7 * PAGE
    assert view["mm_stat"]["same_pages"] == 1
    assert view["mm_stat"]["huge_pages"] == 1
    io = dict(zip(["failed_reads", "failed_writes", "invalid_io", "notify_free"], server.stat("zram0", "io_stat")))
    assert view["io_stat"] == io
    assert view["name"] == "zram0"
    assert view["disksize"] == 64 << 20
    assert view["initstate"] == 1
    assert view["comp_algorithm"] == {"selected": "lz4", "available": ["lzo", "lz4", "lz4hc", "zstd", "deflate"]}
    assert view["backing_dev"] is None
    assert view["recomp_algorithm"] == {}
    assert server.http.get("/sys/block/zram0/").json()["name"] == "zram0"
    assert server.http.get("/sys/block/zram3").status_code == 404
    assert server.http.head("/sys/block/zram0").status_code == 200


def test_json_view_with_backing_dev_and_recomp(zramd_factory, contract):
    s = zramd_factory("--disksize", "0", "--backing-dev", "bd.sqlite")
    for attr, body in [("recomp_algorithm", "algo=zstd priority=1"), ("recomp_algorithm", "algo=deflate priority=3"),
                       ("disksize", "1M")]:
        assert s.put_attr("zram0", attr, body).status_code == 204
    assert s.attr("zram0", "recomp_algorithm") == "#1: lzo lz4 lz4hc [zstd] deflate\n#3: lzo lz4 lz4hc zstd [deflate]\n"
    view = s.http.get("/sys/block/zram0").json()
    jsonschema.validate(view, {"$ref": "#/components/schemas/Device", "components": contract.spec["components"]})
    assert view["backing_dev"] == "zram0-bd.sqlite"
    assert view["recomp_algorithm"] == {"1": "zstd", "3": "deflate"}


def test_disksize_twice_is_ebusy_reset_reinitialises(server, corpus):
    r = server.put_attr("zram0", "disksize", "128M")
    assert r.status_code == 409
    assert r.text.startswith("zramd: EBUSY: ")
    page, = corpus.compressible(1)
    server.http.put("/dev/zram0/pages/0", data=page)
    assert server.put_attr("zram0", "reset", "1").status_code == 204
    assert server.attr("zram0", "initstate") == "0\n"
    assert server.attr("zram0", "disksize") == "0\n"
    assert server.http.get("/dev/zram0/pages/0").status_code == 400  # not initialised
    # Suffixes, case-insensitive; rounded up to whole pages.
    assert server.put_attr("zram0", "disksize", "10000\n").status_code == 204
    assert server.attr("zram0", "disksize") == "12288\n"
    server.put_attr("zram0", "reset", "1")
    assert server.http.post("/sys/block/zram0/disksize", data="2m").status_code == 204  # POST = PUT
    assert server.attr("zram0", "disksize") == f"{2 << 20}\n"
    assert server.http.get("/dev/zram0/pages/0").status_code == 404  # everything was freed


def test_before_init_settings_are_ebusy_when_initialised(server):
    for attr, body in [("comp_algorithm", "zstd"), ("algorithm_params", "level=3"),
                       ("recomp_algorithm", "algo=zstd priority=1"), ("backing_dev", "x.sqlite"),
                       ("compressed_writeback", "1")]:
        r = server.put_attr("zram0", attr, body)
        assert r.status_code == 409, (attr, r.status_code, r.text)
        assert r.text.startswith("zramd: EBUSY: "), r.text


def test_before_init_settings_accepted_when_uninitialised(zramd_factory):
    s = zramd_factory("--disksize", "0")
    for attr, body in [("comp_algorithm", "zstd\n"), ("algorithm_params", "algo=zstd level=7"),
                       ("algorithm_params", "algo=deflate level=6 deflate.winbits=15"),
                       ("recomp_algorithm", "algo=lz4hc"), ("backing_dev", "x.sqlite"), ("backing_dev", "none"),
                       ("compressed_writeback", "yes"), ("compressed_writeback", "0")]:
        r = s.put_attr("zram0", attr, body)
        assert r.status_code == 204, (attr, body, r.status_code, r.text)
    assert s.attr("zram0", "comp_algorithm") == "lzo lz4 lz4hc [zstd] deflate\n"
    assert s.attr("zram0", "recomp_algorithm") == "#1: lzo lz4 [lz4hc] zstd deflate\n"
    assert s.attr("zram0", "backing_dev") == "none\n"


GARBAGE = [
    ("disksize", "abc", "EINVAL"), ("disksize", "-1", "EINVAL"), ("disksize", "0", "EINVAL"),
    ("disksize", "12Q", "EINVAL"), ("disksize", "99999999999999999999", "ERANGE"), ("disksize", "", "EINVAL"),
    ("reset", "0", "EINVAL"), ("reset", "yes", "EINVAL"),
    ("comp_algorithm", "brotli", "EINVAL"), ("comp_algorithm", "x" * 200, "E2BIG"),
    ("algorithm_params", "level=abc", "EINVAL"), ("algorithm_params", "algo=zstd priority=1", "EINVAL"),
    ("algorithm_params", "colour=red", "EINVAL"), ("algorithm_params", "level", "EINVAL"),
    ("algorithm_params", "level=", "EINVAL"), ("algorithm_params", "priority=7", "EINVAL"),
    ("algorithm_params", "dict=../../etc/passwd", "EINVAL"), ("algorithm_params", "dict=missing.dict", "EINVAL"),
    ("recomp_algorithm", "algo=zstd priority=4", "EINVAL"), ("recomp_algorithm", "priority=1", "EINVAL"),
    ("recomp_algorithm", "zstd", "EINVAL"), ("recomp_algorithm", "algo=zstd algo=lz4", "EINVAL"),
    ("backing_dev", "../escape.sqlite", "EINVAL"), ("backing_dev", "/etc/passwd", "EINVAL"),
    ("backing_dev", "", "EINVAL"),
    ("compressed_writeback", "maybe", "EINVAL"),
]

GARBAGE_INITIALISED = [
    ("idle", "soon", "EINVAL"), ("idle", "-5", "EINVAL"),
    ("recompress", "type=bogus", "EINVAL"), ("recompress", "threshold", "EINVAL"),
    ("recompress", "colour=red", "EINVAL"), ("recompress", "algo=zstd priority=1", "EINVAL"),
    ("recompress", "priority=9", "EINVAL"), ("recompress", "type=idle", "EINVAL"),  # no recomp_algorithm
    ("writeback", "type=bogus", "EINVAL"), ("writeback", "sometimes", "EINVAL"),
    ("writeback", "page_indexes=5-3", "ERANGE"), ("writeback", "page_indexes=5", "EINVAL"),
    ("writeback", "page_index=x", "EINVAL"), ("writeback", "", "EINVAL"),
    ("writeback_limit", "lots", "EINVAL"), ("writeback_limit_enable", "2", "EINVAL"),
    ("writeback_batch_size", "0", "EINVAL"), ("writeback_batch_size", "5000", "EINVAL"),
    ("mem_limit", "x", "EINVAL"), ("mem_limit", "1Z", "EINVAL"),
    ("mem_used_max", "5", "EINVAL"),
]


@pytest.mark.parametrize("attr,body,errno", GARBAGE, ids=[f"{a}={b[:20]!r}" for a, b, _ in GARBAGE])
def test_garbage_before_init_is_400(zramd_factory, attr, body, errno):
    s = zramd_factory("--disksize", "0", "--num-devices", "1")
    r = s.put_attr("zram0", attr, body)
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.text.startswith(f"zramd: {errno}: "), r.text
    assert ERROR_BODY.match(r.text)
    # Nothing changed.
    assert s.attr("zram0", "initstate") == "0\n"
    assert s.attr("zram0", "comp_algorithm") == "lzo [lz4] lz4hc zstd deflate\n"
    assert s.attr("zram0", "backing_dev") == "none\n"


def test_garbage_when_initialised_is_400(server):
    for attr, body, errno in GARBAGE_INITIALISED:
        r = server.put_attr("zram0", attr, body)
        assert r.status_code == 400, (attr, body, r.status_code, r.text)
        assert r.text.startswith(f"zramd: {errno}: "), (attr, body, r.text)
    assert server.attr("zram0", "writeback_batch_size") == "32\n"
    assert server.attr("zram0", "mem_limit") == "0\n"


def test_post_processing_before_init_is_400(zramd_factory):
    s = zramd_factory("--disksize", "0")
    for attr, body in [("idle", "all"), ("compact", "1"), ("writeback", "idle")]:
        r = s.put_attr("zram0", attr, body)
        assert r.status_code in (400, 409), (attr, r.status_code, r.text)
        assert ERROR_BODY.match(r.text)


def test_non_utf8_body_is_400(server):
    r = server.http.put("/sys/block/zram0/mem_limit", data=b"\xff\xfe1M")
    assert r.status_code == 400
    assert "UTF-8" in r.text


def test_settings_round_trip(server):
    for attr, body, shown in [("mem_limit", "8M", f"{8 << 20}\n"), ("mem_limit", "1000", "4096\n"),
                              ("mem_limit", "0", "0\n"), ("writeback_limit", "100", "100\n"),
                              ("writeback_limit_enable", "1", "1\n"), ("writeback_limit_enable", "off", "0\n"),
                              ("writeback_batch_size", "64\n", "64\n")]:
        assert server.put_attr("zram0", attr, body).status_code == 204, (attr, body)
        assert server.attr("zram0", attr) == shown, (attr, body)


def test_mem_used_max_reset(server, corpus):
    pages = corpus.incompressible_ish(30)
    for i, p in enumerate(pages):
        server.http.put(f"/dev/zram0/pages/{i}", data=p)
    peak = int(server.attr("zram0", "mem_used_max"))
    for i in range(30):
        server.http.delete(f"/dev/zram0/pages/{i}")
    assert server.put_attr("zram0", "compact", "1").status_code == 204
    assert int(server.attr("zram0", "mem_used_max")) == peak
    assert server.put_attr("zram0", "mem_used_max", "0").status_code == 204
    mm = server.stat("zram0", "mm_stat")
    assert mm[4] == mm[2] < peak  # mem_used_max back to mem_used_total


def test_wrong_direction_is_405(server):
    for attr in READ_ONLY:
        r = server.put_attr("zram0", attr, "1")
        assert r.status_code == 405, attr
        assert r.headers["Allow"] == "GET, HEAD"
        assert f"{attr} is read-only" in r.text
    for attr in WRITE_ONLY:
        r = server.http.get(f"/sys/block/zram0/{attr}")
        assert r.status_code == 405, attr
        assert r.headers["Allow"] == "PUT, POST"
        assert f"{attr} is write-only" in r.text
    r = server.http.delete("/sys/block/zram0/disksize")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD, PUT, POST"
    r = server.http.delete("/sys/block/zram0/mm_stat")
    assert r.headers["Allow"] == "GET, HEAD"
    for method, path in [("PUT", "/sys/block"), ("DELETE", "/sys/block"), ("POST", "/sys/block/zram0"),
                         ("DELETE", "/sys/block/zram0")]:
        r = server.http.request(method, path, data=b"")
        assert r.status_code == 405, (method, path)
        assert r.headers["Allow"] == "GET, HEAD"


def test_unknown_attribute_device_and_path_are_404(server):
    for path, errno in [("/sys/block/zram0/max_comp_streams", "ENOENT"), ("/sys/block/zram0/nope", "ENOENT"),
                        ("/sys/block/zram5/disksize", "ENODEV"), ("/sys/block/zram5", "ENODEV"),
                        ("/sys/block/loop0/disksize", "ENODEV"), ("/sys/block/zram0/mm_stat/x", "ENOENT"),
                        ("/sys/class/zram-control/nope", "ENOENT"), ("/sys/devices", "ENOENT"), ("/sys", "ENOENT")]:
        r = server.http.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert r.text.startswith(f"zramd: {errno}: "), (path, r.text)
    r = server.put_attr("zram0", "max_comp_streams", "4")
    assert r.status_code == 404
    r = server.put_attr("zram9", "disksize", "1M")
    assert r.status_code == 404


def test_every_documented_attribute_exists(server, contract):
    attr = next(p for p in contract.spec["paths"]["/sys/block/zram{id}/{attr}"]["parameters"] if p.get("name") == "attr")
    for name in attr["schema"]["enum"]:
        r = server.http.get(f"/sys/block/zram0/{name}")
        assert r.status_code == (405 if name in WRITE_ONLY else 200), (name, r.status_code)
    # The JSON view holds exactly the readable ones.
    assert set(server.http.get("/sys/block/zram0").json()) == set(READABLE) | {"name"}
