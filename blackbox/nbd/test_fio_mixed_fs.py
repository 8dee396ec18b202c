"""fio's nbd engine with data verification, NBD writes against HTTP reads under an oracle, and a filesystem on nbdfuse."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import PAGE


def fio(server, name: str, *options: str) -> str:
    args = ["fio", f"--name={name}", "--ioengine=nbd", f"--uri={server.uri('zram1')}", "--size=64m",
            "--verify=crc32c", "--verify_fatal=1", "--do_verify=1", "--verify_state_save=0", "--output-format=normal", *options]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verify:" not in result.stderr and "bad magic" not in result.stdout, result.stdout + result.stderr
    return result.stdout


def test_fio_4k_random_writes_verify_at_depth_32(server):
    out = fio(server, "rand4k", "--rw=randwrite", "--bs=4k", "--iodepth=32", "--offset=128m")
    assert "err= 0" in out, out


def test_fio_1m_sequential_writes_verify(server):
    out = fio(server, "seq1m", "--rw=write", "--bs=1m", "--iodepth=4", "--offset=256m")
    assert "err= 0" in out, out


def test_fio_unaligned_512_byte_random_writes_verify(server):
    # 512-byte blocks: every write is a read-modify-write of part of a page.
    out = fio(server, "rand512", "--rw=randwrite", "--bs=512", "--iodepth=16", "--offset=384m", "--size=4m")
    assert "err= 0" in out, out


def test_nbd_writes_and_http_reads_of_the_same_pages_agree_with_an_oracle(server):
    """Writers over NBD (two connections) and readers over HTTP run at once; every HTTP read must
    return a version some writer stored in that page (or nothing yet), and the end state must be
    the last version written; then HTTP writes are read back over NBD."""
    pages = list(range(60000, 60256))
    rng = random.Random(21)
    versions = {p: [rng.randbytes(PAGE) for _ in range(6)] for p in pages}
    written: dict[int, set[bytes]] = {p: set() for p in pages}
    last: dict[int, bytes] = {}
    lock = threading.Lock()
    stop = threading.Event()
    problems = []

    def writer(part: list[int]):
        h = server.handle()
        for round_ in range(6):
            for p in part:
                data = versions[p][round_]
                with lock:
                    written[p].add(data)
                h.pwrite(data, p * PAGE)
                with lock:
                    last[p] = data
        h.shutdown()

    def reader():
        session = requests.Session()
        r = random.Random(threading.get_ident())
        while not stop.is_set():
            p = r.choice(pages)
            with lock:
                allowed = set(written[p])
                completed = p in last
            resp = session.get(server.http(f"/dev/zram0/pages/{p}"), timeout=10)
            if resp.status_code == 404:
                if completed:
                    problems.append(p)  # a finished write must be visible
                continue
            with lock:
                allowed |= written[p]
            if resp.content not in allowed:
                problems.append(p)

    writers = [threading.Thread(target=writer, args=(pages[i::2],)) for i in range(2)]
    readers = [threading.Thread(target=reader) for _ in range(3)]
    for t in writers + readers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert not problems, f"HTTP read a version nobody wrote: pages {problems[:5]}"
    for p in pages:
        assert requests.get(server.http(f"/dev/zram0/pages/{p}"), timeout=10).content == last[p]
    # And the other way round: pages stored over HTTP read the same over NBD.
    h = server.handle()
    for p in pages[:32]:
        requests.put(server.http(f"/dev/zram0/pages/{p}"), data=versions[p][0], timeout=10).raise_for_status()
        assert h.pread(PAGE, p * PAGE) == versions[p][0]
    h.shutdown()


def fuse_unavailable() -> str | None:
    if not Path("/dev/fuse").exists():
        return "no /dev/fuse on this machine"
    for tool in ("nbdfuse", "fusermount3", "mkfs.ext4", "e2fsck"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def test_ext4_on_nbdfuse_passes_e2fsck(server, tmp_path):
    reason = fuse_unavailable()
    if reason:
        pytest.skip(f"filesystem test needs FUSE: {reason}")
    mount = tmp_path / "mnt"
    mount.mkdir()
    proc = subprocess.Popen(["nbdfuse", str(mount / "disk"), server.uri("zram1")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 15
        while not (mount / "disk").exists():
            if proc.poll() is not None:
                err = proc.stderr.read()
                if "fuse" in err.lower() and ("permission" in err.lower() or "not permitted" in err.lower()):
                    pytest.skip(f"FUSE mount refused in this container: {err.strip()}")
                pytest.fail(f"nbdfuse exited: {err}")
            if time.time() > deadline:
                pytest.fail("nbdfuse did not mount in 15 s")
            time.sleep(0.1)
        disk = str(mount / "disk")
        assert os.path.getsize(disk) == 512 << 20
        subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "nodiscard", disk], check=True, capture_output=True, timeout=300)
        check = subprocess.run(["e2fsck", "-fn", disk], capture_output=True, text=True, timeout=300)
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        subprocess.run(["fusermount3", "-u", str(mount)], capture_output=True)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
