"""Fixtures for the deploy/ and docs/ tests: real zramd, Prometheus and nginx processes on loopback.

Environment:
  ZRAMD_BIN   the zramd binary (default .build/release/zramd under the repository root)

Every process a test starts is stopped by the fixture or context manager that started it,
also when the test fails. A missing tool fails the test with the Debian package to install;
nothing is skipped.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PAGE = 4096


def require_tool(name: str, package: str) -> str:
    """The path of `name`, or a failure naming the package that provides it."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/bin/{name}", f"/usr/sbin/{name}", f"/bin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)),
        None,
    )
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install {package} (make test-deps installs it)")
    return path


def zramd_path() -> Path:
    path = Path(os.environ.get("ZRAMD_BIN", REPO / ".build" / "release" / "zramd"))
    if not path.is_absolute():
        path = REPO / path
    if not os.access(path, os.X_OK):
        pytest.fail(f"zramd binary not found at {path}: swift build -c release --product zramd, or set ZRAMD_BIN")
    return path


@pytest.fixture(scope="session")
def zramd_bin() -> Path:
    return zramd_path()


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    """Polls `predicate` until it returns a truthy value; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 - reported if we time out
            last_error = error
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_error!r})" if last_error else ""))


def request(method: str, port: int, path: str, body: bytes | None = None, headers: dict | None = None,
         timeout: float = 10.0) -> tuple[int, bytes, dict]:
    """One request on a fresh connection: (status, body, headers)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def healthy(port: int) -> bool:
    try:
        status, body, _ = request("GET", port, "/healthz", timeout=1.0)
        return status == 200 and body == b"ok\n"
    except OSError:
        return False


class Process:
    """A child process with its output in a log file; stopped by `stop()` (SIGTERM, then SIGKILL)."""

    def __init__(self, argv: list[str], log: Path, cwd: Path | None = None, env: dict | None = None):
        self.argv = argv
        self.log = log
        self.log_file = open(log, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log_file, stderr=subprocess.STDOUT, cwd=cwd,
                                     env=env, start_new_session=True)

    def output(self) -> str:
        self.log_file.flush()
        return self.log.read_text(errors="replace")[-4000:]

    def check_alive(self, what: str):
        if self.proc.poll() is not None:
            pytest.fail(f"{what} exited with {self.proc.returncode}: {shlex.join(self.argv)}\n{self.output()}")

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log_file.close()
        return self.proc.returncode


class Zramd(Process):
    """A zramd server on a loopback port."""

    def __init__(self, binary: Path, workdir: Path, args: list[str] = (), port: int | None = None,
                 env: dict | None = None, name: str = "zramd"):
        self.port = port or free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        argv = [str(binary), "serve", "--listen", f"127.0.0.1:{self.port}", *args]
        super().__init__(argv, workdir / f"{name}.log", cwd=workdir, env=env)
        deadline = time.monotonic() + 20
        while not healthy(self.port):
            self.check_alive(name)
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"{name} did not answer /healthz within 20s\n{self.output()}")
            time.sleep(0.05)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        return request(method, self.port, path, body, headers)

    def metrics(self) -> str:
        status, body, _ = self.request("GET", "/metrics")
        assert status == 200, body
        return body.decode()


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def start_zramd(zramd_bin: Path, tmp_path: Path):
    """`start_zramd(args..., name=...)` starts a server; all are stopped at teardown."""
    started: list[Zramd] = []

    def start(*args: str, name: str = "zramd", env: dict | None = None, port: int | None = None) -> Zramd:
        server = Zramd(zramd_bin, tmp_path / name, list(args), port=port, env=env, name=name)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def page_for(key: int, salt: bytes = b"") -> bytes:
    """A compressible 4 KiB page that differs for every key: text-like, not same-filled."""
    line = f"key {key:08d} {salt.hex()} the quick brown fox jumps over the lazy dog {key * 2654435761 % 2**32:08x}\n".encode()
    return (line * (PAGE // len(line) + 1))[:PAGE]


def do_page_io(server: Zramd, pages: int = 64) -> None:
    """Writes, reads and discards pages (compressible, same-filled and random ones) so every series moves."""
    rnd = os.urandom(PAGE * 4)
    for i in range(pages):
        status, body, _ = server.request("PUT", f"/dev/zram0/pages/{i}", page_for(i))
        assert status == 204, body
    for i in range(4):  # incompressible: huge pages
        status, body, _ = server.request("PUT", f"/dev/zram0/pages/{pages + i}", rnd[i * PAGE:(i + 1) * PAGE])
        assert status == 204, body
    status, body, _ = server.request("PUT", f"/dev/zram0/pages/{pages + 4}", b"\0" * PAGE)  # same-filled
    assert status == 204, body
    for i in range(pages):
        status, body, _ = server.request("GET", f"/dev/zram0/pages/{i}")
        assert status == 200 and body == page_for(i)
    status, body, _ = server.request("DELETE", f"/dev/zram0/pages/{pages - 1}")
    assert status == 204, body


@contextlib.contextmanager
def temp_dir(prefix: str):
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# A live Prometheus scraping a live zramd (deploy/prometheus/prometheus.yml with its rule files)


class Monitoring:
    """zramd with a 1 MiB mem_limit and a backing store, and Prometheus scraping it every second."""

    def __init__(self, zramd: Zramd, prometheus: Process, port: int):
        self.zramd = zramd
        self.prometheus = prometheus
        self.port = port

    def api(self, path: str, **params) -> dict:
        import json
        import urllib.parse
        import urllib.request
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        assert len(result) <= 1, f"{expr} has {len(result)} series"
        return float(result[0]["value"][1]) if result else None

    def wait_value(self, expr: str, predicate, what: str, timeout: float = 30) -> float:
        def check():
            v = self.value(expr)
            return v is not None and predicate(v) and (v,)
        return wait_until(check, timeout, f"Prometheus: {what} ({expr})", interval=0.25)[0]

    def alerts(self, name: str) -> list[dict]:
        return [a for a in self.api("alerts")["alerts"] if a["labels"]["alertname"] == name]


@pytest.fixture(scope="session")
def monitoring(zramd_bin: Path, tmp_path_factory):
    import yaml

    prometheus_bin = require_tool("prometheus", "prometheus")
    work = tmp_path_factory.mktemp("monitoring")
    zramd = Zramd(zramd_bin, work / "zramd", ["--disksize", "64M", "--mem-limit", "1M", "--backing-dev", "backing.sqlite"])
    prometheus = None
    try:
        config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
        config["global"].update(scrape_interval="1s", evaluation_interval="1s")
        (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "zramd"]
        job["scrape_timeout"] = "1s"
        job["static_configs"][0]["targets"] = [f"127.0.0.1:{zramd.port}"]
        for rules in config["rule_files"]:
            shutil.copy(DEPLOY / "prometheus" / rules, work / rules)
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        prometheus = Process([prometheus_bin, f"--config.file={work / 'prometheus.yml'}",
                              f"--storage.tsdb.path={work / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
                              "--log.level=warn"], work / "prometheus.log", cwd=work)

        def ready():
            prometheus.check_alive("prometheus")
            return request("GET", port, "/-/ready", timeout=1)[0] == 200
        wait_until(ready, 30, "Prometheus /-/ready")
        m = Monitoring(zramd, prometheus, port)
        # Counters must be seen at their starting value before the I/O that moves them.
        m.wait_value('zram_bd_writes_pages_total{device="zram0"}', lambda v: v == 0, "the first scrape")
        do_page_io(zramd)
        assert zramd.request("PUT", "/sys/block/zram0/idle", b"all")[0] == 204
        assert zramd.request("PUT", "/sys/block/zram0/writeback", b"huge")[0] == 204
        status, body, _ = zramd.request("GET", "/dev/zram0/pages/64")  # a written-back huge page
        assert status == 200, body
        m.wait_value('zram_bd_reads_pages_total{device="zram0"}', lambda v: v >= 1, "a backing store read")
        yield m
    finally:
        if prometheus:
            prometheus.stop()
        zramd.stop()
