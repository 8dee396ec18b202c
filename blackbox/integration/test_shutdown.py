"""SIGTERM finishes the requests in flight, then zramd exits 0."""

import signal
import threading
import time

import requests


def test_sigterm_lets_a_slow_request_finish_then_exits_0(slow_server, corpus):
    s = slow_server
    pool = corpus.incompressible_ish(500)
    # About 0.5 ms a page with zstd-19 here: ~0.5 s or more of work.
    batch = b"".join(pool[i % len(pool)] for i in range(1000))
    result = {}

    def put():
        t0 = time.monotonic()
        try:
            result["response"] = requests.put(s.url("/dev/zram0/pages?from=0"), data=batch, timeout=60)
        except requests.RequestException as e:
            result["error"] = e
        result["seconds"] = time.monotonic() - t0

    thread = threading.Thread(target=put)
    thread.start()
    time.sleep(0.15)
    assert thread.is_alive(), "the batch finished before SIGTERM: make it longer"
    t_signal = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    thread.join(60)
    assert "error" not in result, result.get("error")
    assert result["response"].status_code == 204, result["response"].text
    code = s.proc.wait(30)
    assert code == 0, "".join(s.stderr)
    assert time.monotonic() - t_signal < 20
    log = s.log()
    assert "SIGTERM: finishing requests in flight" in log and "stopped" in log
    # No longer listening.
    try:
        requests.get(s.url("/healthz"), timeout=2)
        raise AssertionError("still answering after exit")
    except requests.ConnectionError:
        pass


def test_sigint_exits_0(zramd_factory):
    s = zramd_factory("--disksize", "1M")
    s.proc.send_signal(signal.SIGINT)
    assert s.proc.wait(20) == 0
    assert "SIGINT" in s.log()
