"""Faults under the SQLite backing store while pages are written back and read.

Each test mounts its own tmpfs (as root; unmounted at teardown) as the data directory, writes pages
back, injects a fault and then checks: every page reads back exact or fails with 503 EIO (507
ENOSPC for a full disk) and is counted in io_stat's failed_reads / failed_writes; pages that stayed
in memory are unaffected; the server keeps serving and exits 0 on SIGTERM.
"""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import ERROR_BODY, PAGE, kill9

BD = "zram0-bd.sqlite"


@pytest.fixture
def tmpfs(tmp_path):
    """mount(size) -> a fresh tmpfs directory; unmounted (after its files lose +i) at teardown."""
    mounts: list[Path] = []

    def mount(size: str) -> Path:
        point = tmp_path / f"mnt{len(mounts)}"
        point.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(point)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.fail(f"cannot mount a tmpfs (the fault tests need root and mount): {r.stderr}")
        mounts.append(point)
        return point

    yield mount
    for point in reversed(mounts):
        subprocess.run(["chattr", "-R", "-i", str(point)], capture_output=True)
        for _ in range(50):
            if subprocess.run(["umount", str(point)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["umount", "-l", str(point)], check=True)


def start(zramd_factory, data: Path, *extra: str):
    return zramd_factory("--disksize", "16M", "--backing-dev", "bd.sqlite", "--workers", "2", *extra,
                         data_dir=data)


def prepare(server, corpus, written_back: int = 160, in_memory: int = 40) -> tuple[dict, dict]:
    """Slots 0.. written back, slots 1000.. left in memory; returns both as slot -> page."""
    wb = corpus.compressible(written_back - written_back // 4) + corpus.huge(written_back // 4)
    wb_pages = {i: p for i, p in enumerate(wb)}
    mem_pages = {1000 + i: p for i, p in enumerate(corpus.compressible(written_back + in_memory)[written_back:])}
    for slot, page in wb_pages.items():
        assert server.http.put(f"/dev/zram0/pages/{slot}", data=page).status_code == 204
    assert server.put_attr("zram0", "idle", "all").status_code == 204
    r = server.put_attr("zram0", "writeback", "idle")
    assert r.status_code == 204, r.text
    assert server.stat("zram0", "bd_stat")[0] == len(wb_pages)
    for slot, page in mem_pages.items():
        assert server.http.put(f"/dev/zram0/pages/{slot}", data=page).status_code == 204
    return wb_pages, mem_pages


def audit(server, pages: dict) -> tuple[int, int]:
    """(exact, failed with EIO); wrong bytes or any other answer fail the test."""
    exact = failed = 0
    before = server.stat("zram0", "io_stat")[0]
    for slot, page in pages.items():
        r = server.http.get(f"/dev/zram0/pages/{slot}")
        if r.status_code == 200:
            assert r.content == page, f"slot {slot}: wrong bytes"
            exact += 1
        else:
            assert r.status_code == 503, (slot, r.status_code, r.text)
            assert r.text.startswith("zramd: EIO: ") and ERROR_BODY.match(r.text), r.text
            assert r.headers.get("Retry-After"), "503 without Retry-After"
            failed += 1
    assert server.stat("zram0", "io_stat")[0] - before == failed, "failed_reads counts every failed read"
    return exact, failed


def writeback_memory_pages(server, mem_pages: dict) -> requests.Response:
    lo, hi = min(mem_pages), max(mem_pages)
    return server.put_attr("zram0", "writeback", f"page_indexes={lo}-{hi}")


def still_serving(server, corpus):
    assert requests.get(server.url("/healthz"), timeout=5).status_code == 200
    page, = corpus.incompressible_ish(1)
    assert server.http.put("/dev/zram0/pages/3000", data=page).status_code == 204
    assert server.http.get("/dev/zram0/pages/3000").content == page
    assert server.http.get("/sys/block/zram0").status_code == 200


def expect_failed_writeback(server, mem_pages, status: int, errno: str, why: str | None = None):
    failed_writes = server.stat("zram0", "io_stat")[1]
    r = writeback_memory_pages(server, mem_pages)
    assert r.status_code == status and r.text.startswith(f"zramd: {errno}: "), (r.status_code, r.text)
    if why:
        assert why in r.text, r.text
    assert server.stat("zram0", "io_stat")[1] > failed_writes, "failed_writes counts the failed batch"
    # The pages it tried to write back are still in memory, exact.
    assert audit(server, mem_pages) == (len(mem_pages), 0)
    return r


def test_backing_file_deleted(tmpfs, zramd_factory, corpus):
    data = tmpfs("64m")
    s = start(zramd_factory, data)
    wb, mem = prepare(s, corpus)
    for suffix in ("", "-wal", "-shm"):
        if (data / (BD + suffix)).exists():
            os.remove(data / (BD + suffix))
    # The open file still holds the written-back pages: they all read back.
    assert audit(s, wb) == (len(wb), 0)
    expect_failed_writeback(s, mem, 503, "EIO", "removed")
    assert "removed" in s.http.get("/sys/block/zram0").json()["backing_store"]["last_fault"]
    assert audit(s, wb) == (len(wb), 0)
    still_serving(s, corpus)


def test_backing_file_made_immutable(tmpfs, zramd_factory, corpus):
    data = tmpfs("64m")
    s = start(zramd_factory, data)
    wb, mem = prepare(s, corpus)
    files = [str(data / (BD + x)) for x in ("", "-wal") if (data / (BD + x)).exists()]
    subprocess.run(["chattr", "+i", *files], check=True)
    try:
        assert audit(s, wb) == (len(wb), 0)
        expect_failed_writeback(s, mem, 503, "EIO", "not writable")
        still_serving(s, corpus)
    finally:
        subprocess.run(["chattr", "-i", *files], check=True)
    # Writable again: writeback resumes.
    r = writeback_memory_pages(s, mem)
    assert r.status_code == 204, r.text
    assert audit(s, mem) == (len(mem), 0) and audit(s, wb) == (len(wb), 0)


@pytest.mark.parametrize("keep", [0.5, 0.0])
def test_backing_file_truncated(tmpfs, zramd_factory, corpus, keep):
    data = tmpfs("64m")
    s = start(zramd_factory, data)
    wb, mem = prepare(s, corpus)
    for suffix in ("", "-wal"):
        path = data / (BD + suffix)
        if path.exists():
            os.truncate(path, int(path.stat().st_size * keep))
    exact, failed, r, f2 = audit_after_damage(s, wb, mem)
    if r.status_code == 503:
        assert f2 == 0, "pages whose writeback failed stay in memory"
    still_serving(s, corpus)
    print(f"\ntruncated to {keep:.0%}: written-back pages exact {exact}, EIO {failed}; writeback after: {r.status_code}")


def audit_after_damage(s, wb, mem):
    """Reads every written-back page (exact or EIO, never wrong), then writes the memory pages
    back: that may work or fail with EIO, never crash or lose them.
    Returns (exact, EIO) of the written-back pages, the writeback reply, and memory pages failing after."""
    exact, failed = audit(s, wb)
    assert exact + failed == len(wb)
    r = writeback_memory_pages(s, mem)
    assert r.status_code in (204, 503), r.text
    e2, f2 = audit(s, mem)
    assert e2 + f2 == len(mem)
    return exact, failed, r, f2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_backing_file_corrupted(tmpfs, zramd_factory, corpus, seed):
    data = tmpfs("64m")
    s = start(zramd_factory, data)
    wb, mem = prepare(s, corpus)
    rng = random.Random(seed)
    for suffix in ("", "-wal"):
        path = data / (BD + suffix)
        if not path.exists():
            continue
        size = path.stat().st_size
        with open(path, "r+b") as f:
            for _ in range(40):
                f.seek(rng.randrange(size))
                f.write(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2048))))
    exact, failed, r, _ = audit_after_damage(s, wb, mem)
    still_serving(s, corpus)
    print(f"\ncorrupted (seed {seed}): written-back pages exact {exact}, EIO {failed}; writeback after: {r.status_code}")


def test_disk_full(tmpfs, zramd_factory, corpus):
    data = tmpfs("6m")
    s = start(zramd_factory, data)
    wb, mem = prepare(s, corpus, written_back=120, in_memory=200)
    # Fill what is left of the file system.
    filler = data / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\xA5" * 65536)
                f.flush()
        except OSError:
            pass
    subprocess.run(["sync"])
    r = expect_failed_writeback(s, mem, 507, "ENOSPC")
    assert audit(s, wb) == (len(wb), 0), "pages already written back still read"
    still_serving(s, corpus)
    filler.unlink()
    r = writeback_memory_pages(s, mem)
    assert r.status_code == 204, r.text
    assert audit(s, mem) == (len(mem), 0) and audit(s, wb) == (len(wb), 0)


def test_kill_9_during_writeback_then_restart(zramd_factory, corpus, tmp_path):
    data = tmp_path / "data"
    args = ("--disksize", "64M", "--backing-dev", "bd.sqlite", "--workers", "2")
    s = zramd_factory(*args, data_dir=data)
    assert s.put_attr("zram0", "writeback_batch_size", "1").status_code == 204
    pages = corpus.compressible(512) + corpus.huge(64)
    count = 12000
    body = b"".join(pages[i % len(pages)] for i in range(count))
    for first in range(0, count, 2000):
        assert s.http.put(f"/dev/zram0/pages?from={first}", data=body[first * PAGE:(first + 2000) * PAGE]).status_code == 204
    assert s.put_attr("zram0", "idle", "all").status_code == 204
    outcome = {}

    def run_writeback():
        try:
            outcome["status"] = requests.put(s.url("/sys/block/zram0/writeback"), data="idle", timeout=120).status_code
        except requests.RequestException as e:
            outcome["error"] = repr(e)

    t = threading.Thread(target=run_writeback)
    t.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and requests.get(s.url("/sys/block/zram0/bd_stat"), timeout=5).text.split()[0] == "0":
        time.sleep(0.005)
    written = int(requests.get(s.url("/sys/block/zram0/bd_stat"), timeout=5).text.split()[0])
    kill9(s)
    t.join(30)
    assert "error" in outcome, f"the writeback finished before the kill: {outcome}"
    assert 0 < written < count
    # Restart on the same data directory.
    s2 = zramd_factory(*args, data_dir=data)
    log = "".join(s2.stderr)
    assert "zram0: discarded " in log and "from a previous run" in log, log
    print("\nrestart said: " + next(line for line in s2.stderr if "discarded" in line).strip())
    # Starts clean: empty device, an empty store, writeback works.
    assert s2.stat("zram0", "bd_stat") == [0, 0, 0]
    assert s2.http.get("/dev/zram0/pages/0").status_code == 404
    for i, page in enumerate(pages[:64]):
        assert s2.http.put(f"/dev/zram0/pages/{i}", data=page).status_code == 204
    assert s2.put_attr("zram0", "writeback", "page_indexes=0-63").status_code == 204
    for i, page in enumerate(pages[:64]):
        assert s2.http.get(f"/dev/zram0/pages/{i}").content == page
    assert s2.stat("zram0", "io_stat")[:2] == [0, 0]
