"""Bearer tokens: the admin token guards state-changing /sys requests, the data token (optional) every /dev request."""

import pytest


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def guarded(zramd_factory, tokens):
    return zramd_factory("--disksize", "16M", "--admin-token-file", tokens["admin_file"],
                         "--data-token-file", tokens["data_file"])


def assert_401(r, why):
    assert r.status_code == 401, (r.request.method, r.request.url, r.status_code)
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="zramd"'
    assert r.text == f"zramd: EACCES: {why}\n"


STATE_CHANGING = [
    ("PUT", "/sys/block/zram0/mem_limit", "1M"),
    ("POST", "/sys/block/zram0/mem_limit", "1M"),
    ("PUT", "/sys/block/zram0/reset", "1"),
    ("PUT", "/sys/block/zram0/writeback", "idle"),
    ("PUT", "/sys/block/zram0/mm_stat", "1"),  # even a read-only attribute: the token is checked first
    ("PUT", "/sys/block/zram9/disksize", "1M"),  # and an unknown device
    ("POST", "/sys/class/zram-control/hot_add", ""),
    ("POST", "/sys/class/zram-control/hot_remove", "0"),
    ("PUT", "/sys/class/zram-control/hot_remove", "0"),
]


def test_admin_token_required_for_state_changing_sys(guarded, tokens, corpus):
    s = guarded
    for method, path, body in STATE_CHANGING:
        assert_401(s.http.request(method, path, data=body), "a bearer token is required")
        assert_401(s.http.request(method, path, data=body, headers=bearer("wrong")), "wrong token")
        assert_401(s.http.request(method, path, data=body, headers=bearer(tokens["data"])), "wrong token")
        assert_401(s.http.request(method, path, data=body, headers={"Authorization": tokens["admin"]}),
                   "a bearer token is required")  # no "Bearer " scheme
        assert_401(s.http.request(method, path, data=body, headers=bearer(tokens["admin"] + "x")), "wrong token")
        assert_401(s.http.request(method, path, data=body, headers=bearer(tokens["admin"][:-1])), "wrong token")
    # Nothing changed.
    assert s.attr("zram0", "mem_limit") == "0\n"
    assert s.attr("zram0", "initstate") == "1\n"
    assert s.http.get("/sys/block").json() == ["zram0"]


def test_admin_token_accepted(guarded, tokens):
    s = guarded
    ok = bearer(tokens["admin"])
    assert s.put_attr("zram0", "mem_limit", "1M", headers=ok).status_code == 204
    assert s.attr("zram0", "mem_limit") == f"{1 << 20}\n"
    assert s.http.post("/sys/class/zram-control/hot_add", headers=ok).text == "1\n"
    assert s.http.post("/sys/class/zram-control/hot_remove", data="1", headers=ok).status_code == 204
    # With the token, the usual errors come through.
    assert s.put_attr("zram0", "mm_stat", "1", headers=ok).status_code == 405
    assert s.put_attr("zram0", "disksize", "1M", headers=ok).status_code == 409


def test_sys_reads_stay_open(guarded):
    s = guarded
    for path in ["/sys/block", "/sys/block/zram0", "/sys/block/zram0/mm_stat", "/sys/block/zram0/disksize",
                 "/sys/kernel/debug/zram/zram0/block_state", "/sys/kernel/debug/zsmalloc/zram0/classes",
                 "/metrics", "/healthz"]:
        r = s.http.get(path)
        assert r.status_code == 200, path
    assert s.http.head("/sys/block/zram0/mm_stat").status_code == 200
    # GET hot_add is not state-changing: 405, not 401.
    assert s.http.get("/sys/class/zram-control/hot_add").status_code == 405


def test_data_token_guards_dev(guarded, tokens, corpus):
    s = guarded
    page, = corpus.compressible(1)
    for method, path in [("PUT", "/dev/zram0/pages/0"), ("GET", "/dev/zram0/pages/0"), ("HEAD", "/dev/zram0/pages/0"),
                         ("DELETE", "/dev/zram0/pages/0"), ("PUT", "/dev/zram0/pages?from=0"),
                         ("GET", "/dev/zram0/pages?from=0&count=1"), ("GET", "/dev/zram9/pages/0")]:
        body = page if method == "PUT" else None
        for headers, why in [({}, "a bearer token is required"), (bearer("nope"), "wrong token"),
                             (bearer(tokens["admin"]), "wrong token")]:
            r = s.http.request(method, path, data=body, headers=headers)
            if method == "HEAD":
                assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Bearer realm="zramd"'
            else:
                assert_401(r, why)
    assert s.stat("zram0", "mm_stat")[0] == 0
    ok = bearer(tokens["data"])
    assert s.http.put("/dev/zram0/pages/0", data=page, headers=ok).status_code == 204
    assert s.http.get("/dev/zram0/pages/0", headers=ok).content == page
    assert s.http.get("/dev/zram0/pages?from=0&count=2", headers=ok).content == page + bytes(4096)
    assert s.http.head("/dev/zram0/pages/0", headers=ok).status_code == 200
    assert s.http.delete("/dev/zram0/pages/0", headers=ok).status_code == 204


def test_no_data_token_leaves_dev_open(zramd_factory, tokens, corpus):
    s = zramd_factory("--disksize", "16M", "--admin-token-file", tokens["admin_file"])
    page, = corpus.compressible(1)
    assert s.http.put("/dev/zram0/pages/0", data=page).status_code == 204
    assert s.http.get("/dev/zram0/pages/0").content == page
    assert_401(s.put_attr("zram0", "compact", "1"), "a bearer token is required")


def test_admin_token_from_environment(zramd_factory, tokens):
    s = zramd_factory("--disksize", "16M", env={"ZRAMD_ADMIN_TOKEN": "from-env"})
    assert_401(s.put_attr("zram0", "compact", "1"), "a bearer token is required")
    assert s.put_attr("zram0", "compact", "1", headers=bearer("from-env")).status_code == 204
