"""Jobs (docs/API.md, "Jobs"): post-processing with ?async=1, progress, cancellation, one per device."""

from __future__ import annotations

import time

import pytest
import requests

from conftest import PAGE, load_pages, slow_recompression

BATCH = 1024


def read_all(server, count: int, first: int = 0) -> list[bytes]:
    out = []
    for i in range(0, count, BATCH):
        n = min(BATCH, count - i)
        r = server.http.get(f"/dev/zram0/pages?from={first + i}&count={n}")
        assert r.status_code == 200, r.text
        out += [r.content[k * PAGE:(k + 1) * PAGE] for k in range(n)]
    return out


def start(server, attr: str, body: str, headers=None) -> dict:
    r = server.http.put(f"/sys/block/zram0/{attr}?async=1", data=body.encode(), headers=headers or {})
    assert r.status_code == 202, r.text
    assert r.headers["Location"].startswith("/jobs/")
    job = r.json()
    assert job["location"] == r.headers["Location"] and job["operation"] == attr and job["body"] == body
    assert job["state"] in ("queued", "running", "done")
    return job


def wait(server, job: dict, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        now = server.http.get(job["location"]).json()
        if now["state"] not in ("queued", "running"):
            return now
        assert time.monotonic() < deadline, now
        time.sleep(0.02)


def wait_until_examined(server, job: dict, pages: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        now = server.http.get(job["location"]).json()
        if now["pages"]["examined"] >= pages or now["state"] not in ("queued", "running"):
            return now
        assert time.monotonic() < deadline, now
        time.sleep(0.005)


def all_pages(corpus) -> list[bytes]:
    return [corpus.page(i) for i in range(min(corpus.count, 16384))]


def test_async_writeback_reports_progress_and_matches_the_synchronous_form(wb_server, corpus):
    pages = all_pages(corpus)
    load_pages(wb_server, pages)
    assert wb_server.put_attr("zram0", "idle", "all").status_code == 204
    before = wb_server.stat("zram0", "mm_stat")
    job = wait(wb_server, start(wb_server, "writeback", "idle"))
    assert job["state"] == "done", job
    written = wb_server.stat("zram0", "bd_stat")[0]
    assert written > 0 and job["result"] == written == job["pages"]["processed"]
    assert job["pages"]["examined"] == job["pages"]["total"] >= written
    assert job["pages"]["skipped"] == job["pages"]["examined"] - job["pages"]["processed"]
    assert job["bytes_before"] == before[1] and job["bytes_after"] == wb_server.stat("zram0", "mm_stat")[1]
    assert job["bytes_after"] < job["bytes_before"]
    assert job["started_at"] and job["finished_at"] and job["error"] is None and job["percent"] == 100
    assert job["eta_seconds"] is None and job["rate_pages_per_second"] > 0
    assert read_all(wb_server, len(pages)) == pages
    # The zram-compatible synchronous form is unchanged: 204, no job.
    assert wb_server.put_attr("zram0", "idle", "all").status_code == 204
    assert wb_server.put_attr("zram0", "writeback", "huge").status_code == 204
    assert [j["id"] for j in wb_server.http.get("/jobs").json()] == [job["id"]]


def test_cancel_mid_writeback_leaves_every_slot_consistent(wb_server, corpus):
    pages = all_pages(corpus)
    load_pages(wb_server, pages)
    assert wb_server.put_attr("zram0", "idle", "all").status_code == 204
    assert wb_server.put_attr("zram0", "writeback_batch_size", "1").status_code == 204
    job = start(wb_server, "writeback", "idle")
    seen = wait_until_examined(wb_server, job, 200)
    assert seen["state"] == "running", seen
    assert seen["eta_seconds"] is not None and 0 < seen["percent"] < 100
    r = wb_server.http.delete(job["location"])
    assert r.status_code == 202 and r.json()["cancel_requested"] is True
    ended = wait(wb_server, job)
    assert ended["state"] == "cancelled", ended
    assert 0 < ended["pages"]["examined"] < ended["pages"]["total"]
    written = wb_server.stat("zram0", "bd_stat")[0]
    assert written == ended["pages"]["processed"] == ended["result"]
    # Every page reads back exact, written back or not.
    assert read_all(wb_server, len(pages)) == pages
    # No slot was left marked: the rest can be written back (synchronously), and the total is the first pick.
    # (Reading cleared `idle`, as in zram: mark them again.)
    assert wb_server.put_attr("zram0", "idle", "all").status_code == 204
    assert wb_server.put_attr("zram0", "writeback", "idle").status_code == 204
    assert wb_server.stat("zram0", "bd_stat")[0] == ended["pages"]["total"]
    assert read_all(wb_server, len(pages)) == pages
    # A cancelled job cannot be cancelled again.
    r = wb_server.http.delete(job["location"])
    assert r.status_code == 400 and "already ended (cancelled)" in r.text


def test_cancel_mid_recompress_leaves_every_slot_consistent(zramd_factory, corpus):
    s = zramd_factory("--disksize", "0", "--workers", "2")
    slow_recompression(s, "32M")
    pages = corpus.incompressible_ish(300) + corpus.compressible(1700)
    load_pages(s, pages)
    job = start(s, "recompress", "")
    seen = wait_until_examined(s, job, 20)
    assert seen["state"] == "running", seen
    assert s.http.delete(job["location"]).status_code == 202
    ended = wait(s, job)
    assert ended["state"] == "cancelled", ended
    assert 0 < ended["pages"]["examined"] < ended["pages"]["total"]
    debug = s.stat("zram0", "debug_stat")[1:]  # after "version: 1"
    assert debug[0] == ended["pages"]["examined"] and debug[1] == ended["pages"]["processed"] == ended["result"]
    assert read_all(s, len(pages)) == pages
    # Every candidate not reached was un-marked: a full synchronous run after it takes them all.
    assert s.put_attr("zram0", "recompress", "max_pages=1000000").status_code == 204
    assert s.stat("zram0", "debug_stat")[1] == ended["pages"]["total"]
    assert read_all(s, len(pages)) == pages


def test_one_job_per_device_and_the_second_is_409_naming_it(wb_server, corpus):
    load_pages(wb_server, all_pages(corpus))
    assert wb_server.put_attr("zram0", "idle", "all").status_code == 204
    assert wb_server.put_attr("zram0", "writeback_batch_size", "1").status_code == 204
    job = start(wb_server, "writeback", "idle")
    r = wb_server.http.put("/sys/block/zram0/compact?async=1", data=b"1")
    assert r.status_code == 409, r.text
    assert r.text.startswith("zramd: EBUSY: ") and f"job {job['id']} (writeback)" in r.text
    assert len(wb_server.http.get("/jobs").json()) == 1
    assert wb_server.http.delete(job["location"]).status_code == 202
    assert wait(wb_server, job)["state"] in ("cancelled", "done")
    # Once it has ended the device takes another.
    assert wait(wb_server, start(wb_server, "compact", "1"))["state"] == "done"


def test_bad_input_is_refused_at_once_and_starts_nothing(zramd_factory, server, corpus):
    load_pages(server, corpus.compressible(10))
    cases = [
        ("writeback", "idle", "async=yes", 400, "EINVAL", "async must be 1"),
        ("writeback", "idle", "async=", 400, "EINVAL", "async must be 1"),
        ("writeback", "bogus", "async=1", 400, "EINVAL", "is not key=value"),
        ("writeback", "idle", "async=1", 409, "ENODEV", "no backing_dev"),
        ("recompress", "type=nope", "async=1", 400, "EINVAL", "recompress type"),
        ("recompress", "", "async=1", 400, "EINVAL", "no recomp_algorithm"),
        ("idle", "soon", "async=1", 400, "EINVAL", "idle age"),
    ]
    for attr, body, query, status, errno, why in cases:
        r = server.http.put(f"/sys/block/zram0/{attr}?{query}", data=body.encode())
        assert r.status_code == status and r.text.startswith(f"zramd: {errno}: ") and why in r.text, (attr, body, query, r.text)
    assert server.http.get("/jobs").json() == []
    # An uninitialised device.
    cold = zramd_factory("--disksize", "0")
    r = cold.http.put("/sys/block/zram0/compact?async=1", data=b"1")
    assert r.status_code == 400 and "not initialised" in r.text
    assert cold.http.get("/jobs").json() == []
    # Unknown jobs, wrong methods.
    for path in ["/jobs/1", "/jobs/0", "/jobs/01", "/jobs/x"]:
        r = server.http.get(path)
        assert r.status_code == 404 and r.text.startswith("zramd: ENOENT: "), path
    assert server.http.delete("/jobs/99").status_code == 404
    assert server.http.post("/jobs", data=b"").status_code == 405
    job = wait(server, start(server, "idle", "all"))
    assert job["state"] == "done" and job["result"] == 10
    r = server.http.put(job["location"], data=b"")
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD, DELETE"
    r = server.http.delete(job["location"])
    assert r.status_code == 400 and "already ended (done)" in r.text


def test_jobs_respect_the_admin_token(zramd_factory, tokens, corpus):
    s = zramd_factory("--disksize", "16M", "--backing-dev", "bd.sqlite", "--admin-token-file", tokens["admin_file"])
    load_pages(s, corpus.compressible(2000))
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    assert s.http.put("/sys/block/zram0/idle", data=b"all", headers=admin).status_code == 204
    assert s.http.put("/sys/block/zram0/writeback_batch_size", data=b"1", headers=admin).status_code == 204
    r = s.http.put("/sys/block/zram0/writeback?async=1", data=b"idle")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert s.http.get("/jobs").json() == []
    job = start(s, "writeback", "idle", headers=admin)
    # Reading is open; cancelling takes the token.
    assert s.http.get(job["location"]).status_code == 200
    r = s.http.delete(job["location"], headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    ended = wait(s, job)
    assert ended["state"] == "done" and ended["cancel_requested"] is False


def test_job_progress_is_in_metrics(wb_server, corpus):
    load_pages(wb_server, corpus.compressible(500))
    assert wb_server.put_attr("zram0", "idle", "all").status_code == 204
    job = wait(wb_server, start(wb_server, "writeback", "idle"))
    text = wb_server.http.get("/metrics").text
    series = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith("zram_job_")}
    assert series['zram_job_running{device="zram0"}'] == 0
    assert series['zram_job_candidate_pages{device="zram0"}'] == job["pages"]["total"] == 500
    assert series['zram_job_examined_pages{device="zram0"}'] == 500
    assert series['zram_job_processed_pages{device="zram0"}'] == 500
    assert series['zram_job_ended_total{device="zram0",state="done"}'] == 1
    assert series['zram_job_ended_total{device="zram0",state="cancelled"}'] == 0
    assert series['zram_job_ended_total{device="zram0",state="failed"}'] == 0


def test_history_is_bounded_and_newest_first(server, corpus):
    load_pages(server, corpus.compressible(10))
    ids = [wait(server, start(server, "compact", "1"))["id"] for _ in range(36)]
    listed = [j["id"] for j in server.http.get("/jobs").json()]
    assert listed == list(reversed(ids))[:32]
    assert server.http.get(f"/jobs/{ids[0]}").status_code == 404
    assert server.http.get(f"/jobs/{ids[-1]}").json()["state"] == "done"


def test_sigterm_stops_a_running_job_and_the_server_exits_cleanly(zramd_factory, corpus):
    s = zramd_factory("--disksize", "0")
    slow_recompression(s, "32M")
    load_pages(s, corpus.incompressible_ish(300) + corpus.compressible(1700))
    job = start(s, "recompress", "")
    assert wait_until_examined(s, job, 5)["state"] == "running"
    started = time.monotonic()
    assert s.stop() == 0
    assert time.monotonic() - started < 10
