"""The client commands (docs/OPERATIONS.md): writeback|recompress|compact|idle, stat --watch, put|get,
against a real server, through a pipe (plain lines) and a pseudo-terminal (progress bars)."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path

from conftest import PAGE, load_pages, slow_recompression, zramd_bin


def run_pipe(server, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(zramd_bin()), *args, "--server", server.base], capture_output=True, text=True,
                          timeout=timeout)


class PtyRun:
    """The client with its stdout and stderr on a pseudo-terminal."""

    def __init__(self, server, *args: str):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([str(zramd_bin()), *args, "--server", server.base], stdin=subprocess.DEVNULL,
                                     stdout=slave, stderr=slave)
        os.close(slave)
        self.out = b""

    def read_until(self, needle: bytes, timeout: float = 60) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.out:
            assert time.monotonic() < deadline, self.out[-2000:]
            if not self.pump(0.05) and self.proc.poll() is not None:
                break
        return self.out

    def pump(self, wait: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO once the child closed the terminal
            return False
        self.out += chunk
        return bool(chunk)

    def finish(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, self.out[-2000:]
            self.pump(0.05)
        while self.pump(0.05):
            pass
        os.close(self.master)
        return self.proc.returncode


def slow_recompress_server(zramd_factory, corpus):
    s = zramd_factory("--disksize", "0", "--workers", "2")
    slow_recompression(s, "32M")
    pages = corpus.incompressible_ish(400) + corpus.compressible(2600)
    load_pages(s, pages)
    return s, pages


def test_writeback_through_a_pipe_prints_plain_lines_and_exits_0(wb_server, corpus):
    pages = [corpus.page(i) for i in range(min(corpus.count, 8000))]
    load_pages(wb_server, pages)
    assert run_pipe(wb_server, "idle").returncode == 0
    r = run_pipe(wb_server, "writeback", "idle", "--interval", "0.05")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    written = wb_server.stat("zram0", "bd_stat")[0]
    assert written > 0
    assert "\r" not in r.stdout and "\x1b" not in r.stdout
    assert all(line.startswith("writeback job ") for line in lines), lines
    assert lines[-1].endswith(f"done, {written} of {written} pages processed (result {written}), "
                              f"compr_data_size {lines[-1].split('compr_data_size ')[1].split(' ')[0]} -> 0 bytes")
    assert any("100.0%" in line for line in lines)
    job = wb_server.http.get("/jobs").json()[0]
    assert job["operation"] == "writeback" and job["state"] == "done" and job["result"] == written
    # compact and idle with an age run the same way.
    r = run_pipe(wb_server, "compact")
    assert r.returncode == 0 and "compact job" in r.stdout and ": done" in r.stdout
    r = run_pipe(wb_server, "idle", "3600")
    assert r.returncode == 0 and "done, 0 of" in r.stdout


def test_a_refused_job_exits_1_with_the_servers_reason(server):
    r = run_pipe(server, "writeback", "idle")
    assert r.returncode == 1
    assert "HTTP 409: zramd: ENODEV: zram0 has no backing_dev" in r.stderr
    r = run_pipe(server, "recompress", "type=bogus")
    assert r.returncode == 1 and "zramd: EINVAL: recompress type" in r.stderr
    assert server.http.get("/jobs").json() == []


def test_writeback_on_a_terminal_draws_a_progress_bar(wb_server, corpus):
    load_pages(wb_server, [corpus.page(i) for i in range(min(corpus.count, 8000))])
    assert wb_server.put_attr("zram0", "idle", "all").status_code == 204
    assert wb_server.put_attr("zram0", "writeback_batch_size", "4").status_code == 204
    run = PtyRun(wb_server, "writeback", "idle", "--interval", "0.05")
    assert run.finish() == 0, run.out
    out = run.out.decode()
    assert "\r" in out and "\x1b[K" in out
    assert "[" + "#" * 30 + "] 100.0%" in out
    assert "] " in out and "-]" in out  # a partly filled bar was drawn before the end
    assert out.rstrip().splitlines()[-1].startswith("writeback job 1 on zram0: done")


def test_ctrl_c_cancels_the_job_through_a_pipe(zramd_factory, corpus):
    s, pages = slow_recompress_server(zramd_factory, corpus)
    proc = subprocess.Popen([str(zramd_bin()), "recompress", "--server", s.base, "--interval", "0.05"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        jobs = s.http.get("/jobs").json()
        if jobs and jobs[0]["pages"]["examined"] >= 10:
            break
        assert time.monotonic() < deadline and proc.poll() is None, jobs
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "cancelling (Ctrl-C)" in out and "cancelled after" in out.splitlines()[-1]
    job = s.http.get("/jobs").json()[0]
    assert job["state"] == "cancelled" and job["pages"]["examined"] < job["pages"]["total"]
    got = b"".join(s.http.get(f"/dev/zram0/pages?from={i}&count=1000").content for i in range(0, len(pages), 1000))
    assert got == b"".join(pages)


def test_ctrl_c_cancels_the_job_on_a_terminal(zramd_factory, corpus):
    s, _ = slow_recompress_server(zramd_factory, corpus)
    run = PtyRun(s, "recompress", "--interval", "0.05")
    run.read_until(b"running")
    run.proc.send_signal(signal.SIGINT)
    assert run.finish() == 130, run.out
    out = run.out.decode()
    assert "\r" in out and "cancelling (Ctrl-C)" in out
    assert s.http.get("/jobs").json()[0]["state"] == "cancelled"


def test_put_and_get_move_a_file_page_by_page(server, corpus, tmp_path):
    image = tmp_path / "image.bin"
    data = corpus.data[: 3000 * PAGE + 1234]  # not a whole number of pages
    image.write_bytes(data)
    r = run_pipe(server, "put", str(image), "--from", "100", "--batch", "64")
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stdout and r.stdout.splitlines()[-1].endswith(f"3001 pages ({len(data)} bytes) written")
    assert server.http.get("/dev/zram0/pages/100").content == data[:PAGE]
    back = tmp_path / "back.bin"
    run = PtyRun(server, "get", str(back), "--from", "100", "--count", "3001", "--batch", "64")
    assert run.finish() == 0, run.out
    assert b"\r" in run.out and b"100.0%" in run.out
    got = back.read_bytes()
    assert len(got) == 3001 * PAGE and got[: len(data)] == data and got[len(data):] == bytes(3001 * PAGE - len(data))
    # Through a pseudo-terminal the put draws a bar too; pages outside the disk are the server's error.
    run = PtyRun(server, "put", str(image), "--from", "5000")
    assert run.finish() == 0 and b"[" + b"#" * 30 + b"]" in run.out
    r = run_pipe(server, "get", str(tmp_path / "x"), "--from", "16383", "--count", "2")
    assert r.returncode == 1 and "HTTP 400: zramd: ERANGE" in r.stderr, r.stderr


def test_put_and_get_take_the_data_token(zramd_factory, tokens, corpus, tmp_path):
    s = zramd_factory("--disksize", "16M", "--data-token-file", tokens["data_file"])
    image = tmp_path / "image.bin"
    image.write_bytes(corpus.data[: 10 * PAGE])
    r = run_pipe(s, "put", str(image), "--from", "0")
    assert r.returncode == 1 and "HTTP 401" in r.stderr
    r = run_pipe(s, "put", str(image), "--from", "0", "--token-file", tokens["data_file"])
    assert r.returncode == 0, r.stderr


def test_stat_watch_refreshes_the_table(server, corpus):
    proc = subprocess.Popen([str(zramd_bin()), "stat", "--watch", "--interval", "0.3", "--bytes", "--server", server.base],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    load_pages(server, corpus.compressible(100))
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=10)
    tables = [t for t in out.split("\n\n") if "/dev/zram0" in t]
    assert len(tables) >= 4, out
    data = [int(t.splitlines()[-1].split()[3]) for t in tables]
    assert data[0] == 0 and data[-1] == 100 * PAGE, data
