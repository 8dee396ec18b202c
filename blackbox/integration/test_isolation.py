"""The point of the design, over HTTP: a slow batch (zstd level 19) never delays other connections' reads."""

import math
import random
import re
import selectors
import socket
import threading
import time

import requests

from conftest import PAGE, slow_recompression

READERS = 32
STORED = 64


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


class Readers:
    """READERS keep-alive connections driven by one thread with raw sockets (no GIL contention between
    client threads, which would measure Python rather than zramd): each sends GET of a stored slot,
    waits for the whole reply, records the latency, and goes again."""

    def __init__(self, port, stored):
        self.port, self.stored = port, stored
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        rng = random.Random(7)
        sel = selectors.DefaultSelector()
        for _ in range(READERS):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ, {"buf": b"", "slot": 0, "t": 0.0})
        self.ready.set()

        def send(key):
            key.data["slot"] = i = rng.randrange(len(self.stored))
            key.data["buf"] = b""
            key.data["t"] = time.monotonic()
            key.fileobj.sendall(f"GET /dev/zram0/pages/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())

        for key in list(sel.get_map().values()):
            send(key)
        while not self.stop.is_set():
            for key, _ in sel.select(timeout=0.5):
                chunk = key.fileobj.recv(65536)
                if not chunk:
                    self.errors.append("connection closed")
                    sel.unregister(key.fileobj)
                    continue
                key.data["buf"] += chunk
                head, sep, body = key.data["buf"].partition(b"\r\n\r\n")
                if not sep:
                    continue
                length = int(re.search(rb"Content-Length: (\d+)", head, re.I).group(1))
                if len(body) < length:
                    continue
                self.latencies.append(time.monotonic() - key.data["t"])
                if not head.startswith(b"HTTP/1.1 200") or body != self.stored[key.data["slot"]]:
                    self.errors.append(f"slot {key.data['slot']}: {head[:15]!r}")
                if not self.stop.is_set():
                    send(key)
        for key in list(sel.get_map().values()):
            key.fileobj.close()

    def run_while(self, action):
        """Starts the readers, runs action(), stops them; returns (action's result, its duration)."""
        self.thread.start()
        self.ready.wait(10)
        time.sleep(0.05)
        t0 = time.monotonic()
        try:
            result = action()
        finally:
            seconds = time.monotonic() - t0
            self.stop.set()
            self.thread.join(30)
        return result, seconds


def test_slow_batch_does_not_delay_single_page_gets(slow_server, corpus):
    s = slow_server
    assert s.attr("zram0", "comp_algorithm") == "lzo lz4 lz4hc [zstd] deflate\n"
    stored = corpus.compressible(STORED)
    assert s.http.put("/dev/zram0/pages?from=0", data=b"".join(stored)).status_code == 204

    # Calibrate: how long zstd-19 takes per page here, so the batch runs about a second.
    sample = corpus.incompressible_ish(64)
    t0 = time.monotonic()
    assert s.http.put("/dev/zram0/pages?from=8000", data=b"".join(sample)).status_code == 204
    per_page = (time.monotonic() - t0) / len(sample)
    count = max(256, min(4096, math.ceil(1.0 / per_page)))
    pool = corpus.incompressible_ish(500) + corpus.compressible(3000)
    batch = b"".join(pool[i % len(pool)] for i in range(count))

    # Baseline: the same readers with nothing else running.
    idle = Readers(s.port, stored)
    idle.run_while(lambda: time.sleep(0.5))
    assert not idle.errors, idle.errors[:5]
    base_p99 = percentile(idle.latencies, 99)

    readers = Readers(s.port, stored)
    r, batch_seconds = readers.run_while(
        lambda: requests.put(s.url("/dev/zram0/pages?from=10000"), data=batch, timeout=120))
    assert r.status_code == 204, r.text
    assert not readers.errors, readers.errors[:5]

    during = readers.latencies
    p50, p99, worst = percentile(during, 50), percentile(during, 99), max(during)
    report = (f"batch of {count} pages took {batch_seconds * 1000:.0f} ms ({per_page * 1e3:.2f} ms/page); "
              f"{len(during)} GETs from {READERS} connections: p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms, "
              f"max {worst * 1e3:.1f} ms; without the batch p99 {base_p99 * 1e3:.1f} ms")
    print(report)
    assert batch_seconds > 0.3, report
    assert len(during) >= 5 * READERS, report
    assert p99 < 0.05, report
    assert p99 < batch_seconds / 6, report
    # The batch landed whole.
    check = requests.get(s.url(f"/dev/zram0/pages?from=10000&count={min(count, 64)}"), timeout=30)
    assert check.content == batch[: min(count, 64) * PAGE]


def _slow_zram0_with_zram1(zramd_factory, workers):
    """zram0 compressing with zstd level 19 (a slow codec), zram1 hot-added, uninitialised, lz4."""
    s = zramd_factory("--disksize", "0", "--comp-algorithm", "zstd", "--workers", str(workers))
    for attr, body in [("algorithm_params", "algo=zstd level=19"), ("disksize", "64M")]:
        assert s.put_attr("zram0", attr, body).status_code == 204
    assert s.http.post("/sys/class/zram-control/hot_add").text == "1\n"
    assert s.put_attr("zram1", "comp_algorithm", "lz4").status_code == 204
    return s


def test_requests_routed_before_hot_remove_get_404(zramd_factory, corpus):
    """Issue 10 item 2: with the only worker busy, hot_remove 1, disksize and a batch PUT to
    zram1 were routed to the old device object and all answered 204 for data that then no
    longer existed. Requests that reach a removed device are refused with 404 ENODEV."""
    s = _slow_zram0_with_zram1(zramd_factory, workers=1)
    pages = corpus.compressible(2000)
    busy_seconds = []

    def occupy():
        t0 = time.monotonic()
        requests.put(s.url("/dev/zram0/pages?from=0"), data=b"".join(pages), timeout=300)
        busy_seconds.append(time.monotonic() - t0)

    busy = threading.Thread(target=occupy)
    busy.start()
    time.sleep(0.2)  # the worker is compressing 2,000 pages at zstd-19
    results = {}

    def send(name, method, path, body):
        results[name] = requests.request(method, s.url(path), data=body, timeout=120)

    threads = []
    for name, method, path, body in [("hot_remove", "POST", "/sys/class/zram-control/hot_remove", b"1"),
                                     ("disksize", "PUT", "/sys/block/zram1/disksize", b"1M"),
                                     ("batch", "PUT", "/dev/zram1/pages?from=0", b"".join(pages[:4]))]:
        t = threading.Thread(target=send, args=(name, method, path, body))
        t.start()
        threads.append(t)
        time.sleep(0.1)  # queued behind the busy worker in this order
    busy.join(120)
    for t in threads:
        t.join(120)
    assert busy_seconds[0] > 1.0, f"the worker was busy for {busy_seconds[0]:.2f} s only: the requests were not queued"
    assert results["hot_remove"].status_code == 204, results["hot_remove"].text
    for name in ("disksize", "batch"):
        r = results[name]
        assert r.status_code == 404 and r.text.startswith("zramd: ENODEV: "), (name, r.status_code, r.text, {k: v.status_code for k, v in results.items()})
    assert s.http.get("/sys/block").json() == ["zram0"]


def test_attribute_writes_refuse_at_once_during_post_processing(zramd_factory, corpus):
    """Issue 10 item 9: reset, disksize and pre-init attribute writes to a device running a long
    recompression waited for it on the shared workers, and another device's batch GET took
    seconds. They answer 409 EBUSY at once and zram1 is served meanwhile."""
    s = zramd_factory("--disksize", "0", "--workers", "2")
    slow_recompression(s, "64M")
    assert s.http.post("/sys/class/zram-control/hot_add").text == "1\n"
    assert s.put_attr("zram1", "disksize", "16M").status_code == 204
    stored = corpus.compressible(64)
    assert s.http.put("/dev/zram1/pages?from=0", data=b"".join(stored)).status_code == 204
    pool = corpus.compressible(3000)
    for i in range(0, 6000, 1000):
        batch = b"".join(pool[(i + j) % len(pool)] for j in range(1000))
        assert s.http.put(f"/dev/zram0/pages?from={i}", data=batch).status_code == 204
    started = time.monotonic()
    recompress = threading.Thread(target=lambda: s.put_attr("zram0", "recompress", "", timeout=300))
    recompress.start()
    time.sleep(0.3)
    refusals = []
    for attr, body in [("reset", "1"), ("disksize", "8M"), ("comp_algorithm", "zstd"), ("backing_dev", "x.sqlite")] * 4:
        t0 = time.monotonic()
        r = s.put_attr("zram0", attr, body)
        refusals.append(time.monotonic() - t0)
        assert r.status_code == 409 and r.text.startswith("zramd: EBUSY: "), (attr, r.status_code, r.text)
    t0 = time.monotonic()
    r = s.http.get("/dev/zram1/pages?from=0&count=64")
    batch_seconds = time.monotonic() - t0
    still_running = recompress.is_alive()
    recompress.join(300)
    report = (f"recompression ran {time.monotonic() - started:.1f} s; refusals took at most {max(refusals) * 1e3:.0f} ms; "
              f"zram1 batch GET {batch_seconds * 1e3:.0f} ms")
    print(report)
    assert still_running, "the recompression was still running while the writes were refused: " + report
    assert r.status_code == 200 and r.content == b"".join(stored)
    assert max(refusals) < 0.1, report
    assert batch_seconds < 0.1, report
    assert s.put_attr("zram0", "reset", "1").status_code == 204
