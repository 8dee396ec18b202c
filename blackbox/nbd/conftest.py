"""Fixtures for the NBD black-box tests: the release zramd with --nbd-listen on loopback,
driven by real NBD clients (libnbd's nbdinfo/nbdcopy/nbdsh, qemu-io/qemu-img, fio, nbdfuse).

Environment:
  ZRAMD_BIN     the binary (default .build/release/zramd under the repository root)
  ZRAMD_CORPUS  the page corpus (default .corpus/pages-a.bin under the repository root)
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

try:
    import nbd  # python3-libnbd
except ImportError:  # pytest from a non-Debian Python: use Debian's module (same 3.11 ABI)
    sys.path.append("/usr/lib/python3/dist-packages")
    import nbd  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
PAGE = 4096


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def zramd_bin() -> Path:
    path = Path(os.environ.get("ZRAMD_BIN", REPO / ".build" / "release" / "zramd"))
    if not path.exists():
        pytest.fail(f"zramd binary not found at {path}: build it (swift build -c release --product zramd) or set ZRAMD_BIN")
    return path


class Server:
    """One zramd process serving HTTP and NBD on free loopback ports."""

    def __init__(self, disksize: str = "512M", devices: int = 2, extra: list[str] | None = None):
        self.dir = tempfile.mkdtemp(prefix="zramd-nbd-")
        self.http_port, self.nbd_port = free_port(), free_port()
        self.log = open(Path(self.dir) / "log", "w+")
        self.proc = subprocess.Popen(
            [str(zramd_bin()), "--listen", f"127.0.0.1:{self.http_port}", "--nbd-listen", f"127.0.0.1:{self.nbd_port}",
             "--disksize", disksize, "--num-devices", str(devices), "--data-dir", self.dir, *(extra or [])],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.nbd_port), timeout=1).close()
                requests.get(self.http("/healthz"), timeout=1)
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        pytest.fail(f"zramd did not start: {self.output()}")

    def uri(self, export: str = "zram0") -> str:
        return f"nbd://127.0.0.1:{self.nbd_port}/{export}"

    def http(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    def attr(self, name: str, device: int = 0) -> str:
        return requests.get(self.http(f"/sys/block/zram{device}/{name}"), timeout=10).text

    def metric(self, name: str, **labels: str) -> float:
        text = requests.get(self.http("/metrics"), timeout=10).text
        want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
        for line in text.splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return 0.0

    def handle(self, export: str = "zram0", structured: bool = True) -> "nbd.NBD":
        h = nbd.NBD()
        h.set_request_structured_replies(structured)
        h.add_meta_context("base:allocation")
        h.connect_uri(self.uri(export))
        return h

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        subprocess.run(["rm", "-rf", self.dir], check=False)
        return self.proc.returncode


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    assert s.alive(), f"zramd died: {s.output()}"
    assert s.stop() == 0


@pytest.fixture(scope="session")
def corpus() -> bytes:
    for c in (os.environ.get("ZRAMD_CORPUS"), REPO / ".corpus" / "pages-a.bin"):
        if c and Path(c).is_file():
            return Path(c).read_bytes()
    pytest.fail("no page corpus: set ZRAMD_CORPUS or run make .corpus/pages-a.bin")


class RawClient:
    """A hand-driven NBD client for what libnbd refuses to send (bad magic, unknown options, absurd lengths)."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        hello = self.exactly(18)
        assert hello[:16] == b"NBDMAGICIHAVEOPT"
        self.sock.sendall(struct.pack(">I", 3))  # fixed newstyle, no zeroes

    def exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError(f"closed after {len(data)} of {n} bytes")
            data += chunk
        return data

    def option(self, option: int, data: bytes = b"") -> list[tuple[int, bytes]]:
        """Sends an option, returns its replies up to the final one."""
        self.sock.sendall(b"IHAVEOPT" + struct.pack(">II", option, len(data)) + data)
        replies = []
        while True:
            magic, opt, kind, length = struct.unpack(">QIII", self.exactly(20))
            assert magic == 0x3E889045565A9 and opt == option
            replies.append((kind, self.exactly(length)))
            if kind == 1 or kind & 0x80000000:
                return replies

    def go(self, name: str = "zram0") -> None:
        replies = self.option(7, struct.pack(">I", len(name)) + name.encode() + struct.pack(">H", 0))
        assert replies[-1][0] == 1, replies

    def request(self, kind: int, offset: int, length: int, cookie: int = 1, payload: bytes = b"", magic: int = 0x25609513) -> None:
        self.sock.sendall(struct.pack(">IHHQQI", magic, 0, kind, cookie, offset, length) + payload)

    def simple_reply(self) -> tuple[int, int]:
        magic, error, cookie = struct.unpack(">IIQ", self.exactly(16))
        assert magic == 0x67446698
        return error, cookie

    def closed(self) -> bool:
        self.sock.settimeout(10)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()
