"""Fixtures that run the real zramd binary on loopback and check every response against api/openapi.yaml.

Environment:
  ZRAMD_BIN     the binary (default .build/release/zramd under the repository root)
  ZRAMD_CORPUS  the page corpus (default .corpus/pages-a.bin under the repository root)
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
import zlib
from pathlib import Path

import pytest
import requests
import yaml

REPO = Path(__file__).resolve().parents[2]
PAGE = 4096
ERROR_BODY = re.compile(r"^zramd: (EINVAL|ERANGE|E2BIG|EBUSY|EAGAIN|ENOMEM|ENOSPC|EIO|ENODEV|ENOENT|EACCES|ETIMEDOUT): .+\n$")


def zramd_bin() -> Path:
    path = Path(os.environ.get("ZRAMD_BIN", REPO / ".build" / "release" / "zramd"))
    if not path.is_absolute():
        path = REPO / path
    if not path.exists():
        pytest.fail(f"zramd binary not found at {path}: build it (swift build -c release --product zramd) or set ZRAMD_BIN")
    return path


# --------------------------------------------------------------------------------------------
# The corpus


class Corpus:
    """Real pages, picked by how well zlib level 1 compresses them."""

    def __init__(self, path: Path):
        self.path = path
        self.data = path.read_bytes()
        self.count = len(self.data) // PAGE
        ranked = []
        for i in range(self.count):
            page = self.page(i)
            if len(set(page[::64])) == 1 and page == page[:8] * (PAGE // 8):
                continue  # same-filled: not a "real" page for byte checks
            ranked.append((len(zlib.compress(page, 1)) / PAGE, i))
        self.ranked = ranked

    def page(self, i: int) -> bytes:
        return self.data[i * PAGE : (i + 1) * PAGE]

    def pages(self, lo: float, hi: float, n: int) -> list[bytes]:
        """n distinct pages whose zlib-1 ratio lies in [lo, hi)."""
        picked = [self.page(i) for r, i in self.ranked if lo <= r < hi][:n]
        if len(picked) < n:
            pytest.fail(f"corpus {self.path} has only {len(picked)} pages with ratio in [{lo}, {hi}), need {n}")
        return picked

    def compressible(self, n: int) -> list[bytes]:
        return self.pages(0.05, 0.5, n)

    def incompressible_ish(self, n: int) -> list[bytes]:
        """Pages that compress poorly but not always to huge: zstd-19 works hard on them."""
        return self.pages(0.5, 0.85, n)

    def huge(self, n: int) -> list[bytes]:
        """Pages that do not compress (stored raw, flagged huge)."""
        return self.pages(0.92, 10, n)


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    candidates = [os.environ.get("ZRAMD_CORPUS"), REPO / ".corpus" / "pages-a.bin"]
    for c in candidates:
        if c and Path(c).is_file():
            return Corpus(Path(c))
    pytest.fail(f"no page corpus: set ZRAMD_CORPUS (tried {candidates})")


# --------------------------------------------------------------------------------------------
# The contract: every response a test receives through `requests` must be documented


class Contract:
    def __init__(self, path: Path):
        self.spec = yaml.safe_load(path.read_text())
        self.routes = []
        for template, item in self.spec["paths"].items():
            pattern = re.sub(r"\{[a-z]+\}", "[^/]+", re.escape(template).replace(r"\{", "{").replace(r"\}", "}"))
            self.routes.append((re.compile("^" + pattern + "/?$"), template, item))
        self.routes.sort(key=lambda r: -len(r[1].replace("{", "").replace("}", "")))

    def operation(self, method: str, path: str):
        # Concrete templates before templated ones of the same shape: try exact segment matches first.
        for regex, template, item in sorted(self.routes, key=lambda r: r[1].count("{")):
            if regex.match(path):
                return template, item.get(method.lower())
        return None, None

    def check(self, response: requests.Response) -> str | None:
        """None when the response is documented, else why not."""
        request = response.request
        path = requests.utils.urlparse(request.url).path
        method = request.method
        template, op = self.operation(method, path)
        status = str(response.status_code)
        if template is None:
            if status == "404" and ERROR_BODY.match(response.text or ""):
                return None  # unknown paths are 404 with an error body, by the general rule
            return f"{method} {path} -> {status}: no path in api/openapi.yaml matches"
        if op is None:
            # A method the path does not take: the contract's prose (info.description, Methods)
            # says 405 with Allow, after the token check (401) and the device lookup (404).
            body_ok = method == "HEAD" or ERROR_BODY.match(response.text or "")
            if status == "405" and "Allow" in response.headers and body_ok:
                return None
            if status == "401" and "WWW-Authenticate" in response.headers and body_ok:
                return None
            if status == "404" and body_ok:
                return None
            return f"{method} {path} -> {status}: {template} documents no {method}"
        responses = op.get("responses", {})
        if status not in responses:
            return f"{method} {path} -> {status}: {template} {method} documents only {sorted(responses)}"
        content_type = response.headers.get("Content-Type", "")
        if content_type.count("/") > 1:
            return f"{method} {path} -> {status}: Content-Type sent more than once: {content_type!r}"
        declared = responses[status]
        if "$ref" in declared:
            name = declared["$ref"].rsplit("/", 1)[1]
            declared = self.spec["components"]["responses"][name]
        for header in declared.get("headers", {}):
            if header.lower() != "content-length" and header not in response.headers:
                return f"{method} {path} -> {status}: header {header} is documented but missing"
        if method != "HEAD" and response.status_code >= 400:
            if not ERROR_BODY.match(response.text):
                return f"{method} {path} -> {status}: body {response.text!r} is not 'zramd: ERRNO: why'"
        return None


@pytest.fixture(scope="session")
def contract() -> Contract:
    return Contract(REPO / "api" / "openapi.yaml")


_recorded: list[requests.Response] = []


def _record(response: requests.Response, *args, **kwargs):
    _recorded.append(response)


class Client(requests.Session):
    """A session bound to one server; every response is checked against the contract."""

    def __init__(self, base: str):
        super().__init__()
        self.base = base
        self.hooks["response"].append(_record)

    def request(self, method, url, *args, **kwargs):
        if url.startswith("/"):
            url = self.base + url
        kwargs.setdefault("timeout", 30)
        return super().request(method, url, *args, **kwargs)


@pytest.fixture(autouse=True)
def _contract_check(request, contract):
    _recorded.clear()
    yield
    if request.node.get_closest_marker("no_contract"):
        return
    problems = [p for p in (contract.check(r) for r in _recorded) if p]
    _recorded.clear()
    assert not problems, "responses not documented in api/openapi.yaml:\n" + "\n".join(sorted(set(problems)))


# --------------------------------------------------------------------------------------------
# The server


class Zramd:
    """One zramd process on a loopback port with its own data directory."""

    def __init__(self, args: list[str], data_dir: Path, env: dict | None = None, listen: str = "127.0.0.1:0"):
        self.args = args
        self.data_dir = data_dir
        self.stderr: list[str] = []
        self.exit_code: int | None = None
        full_env = dict(os.environ)
        full_env.pop("ZRAMD_ADMIN_TOKEN", None)
        full_env.pop("ZRAMD_DATA_TOKEN", None)
        full_env.update(env or {})
        cmd = [str(zramd_bin()), "serve", "--listen", listen, "--data-dir", str(data_dir), *args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env=full_env)
        self._listening = threading.Event()
        self._drained = threading.Event()
        self.port: int | None = None
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._listening.wait(20) or self.port is None:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"zramd {' '.join(args)} did not start:\n" + "".join(self.stderr))
        self.base = f"http://127.0.0.1:{self.port}"
        self.http = Client(self.base)
        deadline = time.monotonic() + 10
        while True:
            try:
                if requests.get(self.base + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("zramd never answered /healthz")
            time.sleep(0.02)

    def _drain(self):
        for line in self.proc.stderr:
            self.stderr.append(line)
            m = re.search(r"listening on (?:\[[^\]]+\]|[0-9.]+):(\d+)", line)
            if m:
                self.port = int(m.group(1))
                self._listening.set()
        self._listening.set()
        self._drained.set()

    def log(self, timeout: float = 10) -> str:
        """Everything the server wrote to stderr, once it has exited and the pipe is read to the end."""
        self._drained.wait(timeout)
        return "".join(self.stderr)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def url(self, path: str) -> str:
        return self.base + path

    def stop(self, timeout: float = 20) -> int:
        if self.exit_code is None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.exit_code = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.exit_code = -9
            self.http.close()
        return self.exit_code

    # Convenience

    def put_attr(self, device: str, attr: str, body: str, **kw) -> requests.Response:
        return self.http.put(f"/sys/block/{device}/{attr}", data=body.encode(), **kw)

    def attr(self, device: str, attr: str) -> str:
        r = self.http.get(f"/sys/block/{device}/{attr}")
        assert r.status_code == 200, r.text
        return r.text

    def stat(self, device: str, attr: str) -> list[int]:
        return [int(x) for x in self.attr(device, attr).split() if x.isdigit()]


@pytest.fixture
def zramd_factory(tmp_path):
    """start(*args, env=None) -> Zramd; every server started is stopped at teardown and must exit 0."""
    started: list[Zramd] = []
    counter = iter(range(1000))

    def start(*args: str, env: dict | None = None, listen: str = "127.0.0.1:0") -> Zramd:
        data_dir = tmp_path / f"data{next(counter)}"
        server = Zramd(list(args), data_dir, env=env, listen=listen)
        started.append(server)
        return server

    yield start
    failures = []
    for server in started:
        code = server.stop()
        if code != 0:
            failures.append(f"zramd {' '.join(server.args)} exited {code}:\n" + "".join(server.stderr[-20:]))
    assert not failures, "\n".join(failures)


@pytest.fixture
def server(zramd_factory) -> Zramd:
    """zram0 initialised with 64 MiB, lz4, no backing device, no tokens."""
    return zramd_factory("--disksize", "64M")


@pytest.fixture
def wb_server(zramd_factory) -> Zramd:
    """zram0 with a SQLite backing device (--backing-dev) and zstd as the recompression algorithm."""
    return zramd_factory("--disksize", "64M", "--backing-dev", "bd.sqlite")


@pytest.fixture
def tokens(tmp_path):
    admin, data = "admin-s3cret-token", "data-t0ken"
    (tmp_path / "admin.token").write_text(admin + "\n")
    (tmp_path / "data.token").write_text(data + "\n")
    return {"admin": admin, "data": data, "admin_file": str(tmp_path / "admin.token"),
            "data_file": str(tmp_path / "data.token")}


@pytest.fixture
def slow_server(zramd_factory) -> Zramd:
    """zram0 with zstd level 19 as the primary codec, set over HTTP before init (a slow codec)."""
    s = zramd_factory("--disksize", "0", "--comp-algorithm", "zstd", "--workers", "2")
    for attr, body in [("comp_algorithm", "zstd"), ("algorithm_params", "algo=zstd level=19"), ("disksize", "64M")]:
        r = s.put_attr("zram0", attr, body)
        assert r.status_code == 204, (attr, r.status_code, r.text)
    return s


def slow_recompression(server: Zramd, disksize: str) -> None:
    """Makes zram0's `recompress` slow (zstd level 19 at priority 1), then initialises it with `disksize`."""
    for attr, body in [("recomp_algorithm", "algo=zstd priority=1"), ("algorithm_params", "priority=1 level=19"),
                       ("disksize", disksize)]:
        assert server.put_attr("zram0", attr, body).status_code == 204, attr


def load_pages(server: Zramd, pages: list[bytes], first: int = 0, batch: int = 1024) -> None:
    """Stores `pages` in zram0 from slot `first` on, `batch` pages per request."""
    for i in range(0, len(pages), batch):
        r = server.http.put(f"/dev/zram0/pages?from={first + i}", data=b"".join(pages[i:i + batch]))
        assert r.status_code == 204, r.text


def raw_request(port: int, data: bytes, timeout: float = 10, read: bool = True) -> bytes:
    """Sends bytes on a fresh connection and returns everything read until the server closes or timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if not read:
            return b""
        out = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return out


def status_of(raw: bytes) -> int | None:
    m = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    return int(m.group(1)) if m else None
