"""Bounded bodies (413 without buffering), slow and idle connections, malformed HTTP."""

import socket
import time

import pytest
import requests

from conftest import PAGE, raw_request, status_of

MAX_PAGES = 4
LIMIT = MAX_PAGES * PAGE
RSS_SLACK_KIB = 4 * 1024  # "flat": within a few MiB


@pytest.fixture
def small(zramd_factory):
    return zramd_factory("--disksize", "16M", "--max-batch-pages", str(MAX_PAGES))


def test_body_at_the_limit_is_accepted_one_over_is_413(small, corpus):
    pages = corpus.compressible(MAX_PAGES + 1)
    assert small.http.put("/dev/zram0/pages?from=0", data=b"".join(pages[:MAX_PAGES])).status_code == 204
    r = small.http.put("/dev/zram0/pages?from=0", data=b"".join(pages))
    assert r.status_code == 413
    assert r.text == f"zramd: E2BIG: request body over {LIMIT} bytes\n"
    # The batch GET is bounded the same way, as E2BIG.
    r = small.http.get(f"/dev/zram0/pages?from=0&count={MAX_PAGES + 1}")
    assert r.status_code == 400 and r.text.startswith("zramd: E2BIG: ")
    assert small.http.get(f"/dev/zram0/pages?from=0&count={MAX_PAGES}").content == b"".join(pages[:MAX_PAGES])
    # An attribute body too.
    r = small.http.put("/sys/block/zram0/mem_limit", data=b"1" * (LIMIT + 1))
    assert r.status_code == 413


def test_declared_huge_content_length_is_413_at_once(small):
    rss = small.rss_kib()
    for _ in range(5):
        t0 = time.monotonic()
        head = (f"PUT /dev/zram0/pages?from=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {100 << 20}\r\n\r\n").encode()
        # Only the headers and 64 KiB of the declared 100 MiB are sent.
        with socket.create_connection(("127.0.0.1", small.port), timeout=5) as sock:
            sock.sendall(head)
            try:
                sock.sendall(b"\0" * 65536)
            except (BrokenPipeError, ConnectionResetError):
                pass
            reply = b""
            try:
                while chunk := sock.recv(65536):
                    reply += chunk
            except ConnectionResetError:
                pass
        assert status_of(reply) == 413, reply[:200]
        assert b"Connection: close" in reply or reply.endswith(b"bytes\n")
        assert time.monotonic() - t0 < 2
    assert small.rss_kib() - rss < RSS_SLACK_KIB
    assert small.http.get("/healthz").status_code == 200


def stream_chunked(port, total, end):
    """PUTs a chunked body of `total` bytes in 64 KiB chunks; returns (bytes sent, reply)."""
    chunk = b"\xa5" * 65536
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"PUT /dev/zram0/pages?from=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            while sent < total:
                sock.sendall(framed)
                sent += len(chunk)
            if end:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: read what it sent
        reply = b""
        try:
            while data := sock.recv(65536):
                reply += data
        except (ConnectionResetError, socket.timeout):
            pass
        return sent, reply


def test_chunked_body_over_the_limit_is_413_without_buffering(small):
    rss = small.rss_kib()
    # 32 MiB streamed past a 16 KiB limit, then the body ends: 413.
    sent, reply = stream_chunked(small.port, 32 << 20, end=True)
    assert sent == 32 << 20
    assert status_of(reply) == 413, reply[:200]
    assert small.rss_kib() - rss < RSS_SLACK_KIB
    # An endless one: after dropping 64 MiB more the server answers 413 anyway and hangs up;
    # memory stays flat.
    t0 = time.monotonic()
    sent, reply = stream_chunked(small.port, 512 << 20, end=False)
    assert sent < 512 << 20, "the server kept reading an endless body"
    assert status_of(reply) == 413 and reply.endswith(f"zramd: E2BIG: request body over {LIMIT} bytes\n".encode()), reply[:300]
    assert time.monotonic() - t0 < 30
    assert small.rss_kib() - rss < RSS_SLACK_KIB, (rss, small.rss_kib())
    assert small.http.get("/healthz").status_code == 200


def open_stalled(port, n, partial):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(partial)
        socks.append(s)
    return socks


def closed_by_server(sock, wait):
    sock.settimeout(wait)
    try:
        return sock.recv(1024) is not None  # b"" (closed) or an error reply before closing
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_slowloris_does_not_block_others_and_times_out(zramd_factory, corpus):
    s = zramd_factory("--disksize", "16M", "--idle-timeout", "2")
    page, = corpus.compressible(1)
    s.http.put("/dev/zram0/pages/0", data=page)
    t0 = time.monotonic()
    stalled = open_stalled(s.port, 100, b"GET /dev/zram0/pages/0 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    stalled += open_stalled(s.port, 100, b"PUT /dev/zram0/pages/1 HT")
    try:
        # A normal client is served at once, several times, on fresh connections.
        for _ in range(5):
            t = time.monotonic()
            r = requests.get(s.url("/dev/zram0/pages/0"), timeout=5)
            assert r.status_code == 200 and r.content == page
            assert time.monotonic() - t < 0.5
        assert time.monotonic() - t0 < 2, "the check ran past the idle timeout; the machine is too slow for it"
        # After the idle timeout every stalled connection is closed.
        time.sleep(max(0.0, t0 + 2.5 - time.monotonic()))
        deadline = time.monotonic() + 5
        open_ones = [x for x in stalled if not closed_by_server(x, max(0.05, deadline - time.monotonic()))]
        assert not open_ones, f"{len(open_ones)} of {len(stalled)} stalled connections still open"
    finally:
        for x in stalled:
            x.close()
    assert requests.get(s.url("/healthz"), timeout=5).status_code == 200


def test_idle_keep_alive_connection_is_closed(zramd_factory):
    s = zramd_factory("--disksize", "1M", "--idle-timeout", "2")
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        t0 = time.monotonic()
        sock.settimeout(6)
        assert sock.recv(4096) == b""
        assert 1.5 < time.monotonic() - t0 < 5


@pytest.mark.parametrize("request_bytes", [
    b"GARBAGE\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64) + b"\r\n\r\n",  # a TLS ClientHello
    b"GET\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"PUT /dev/zram0/pages/0 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
    b"GET /" + b"a" * 40000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
], ids=["garbage", "tls", "no-target", "no-host", "no-colon", "negative-length", "two-lengths", "bad-chunk",
        "huge-uri"])
def test_malformed_http_is_400_or_closed_and_server_keeps_serving(server, request_bytes):
    reply = raw_request(server.port, request_bytes, timeout=3)
    status = status_of(reply)
    assert status is None or 400 <= status < 500 and status != 404, reply[:300]
    assert status != 200
    r = requests.get(server.url("/healthz"), timeout=5)
    assert r.status_code == 200


def test_trickling_request_is_closed_after_the_timeout(zramd_factory):
    # An inactivity timeout alone is never tripped by a trickle: the header deadline
    # (--header-timeout) runs from accept however the bytes arrive.
    s = zramd_factory("--disksize", "1M", "--idle-timeout", "2", "--header-timeout", "2")
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Trickle: ")
        t0 = time.monotonic()
        closed = False
        try:
            while time.monotonic() - t0 < 6:
                sock.sendall(b"a")
                time.sleep(0.5)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        if not closed:
            sock.settimeout(2)
            reply = sock.recv(4096)
            closed = reply.startswith(b"HTTP/1.1 408") and b"zramd: ETIMEDOUT: " in reply
        assert closed, "a request trickled for 6 s past a 2 s --header-timeout is still being read"
