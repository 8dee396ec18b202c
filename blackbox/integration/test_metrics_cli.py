"""/metrics (Prometheus exposition, promtool) and `zramd stat`."""

import re
import shutil
import subprocess

import pytest

from conftest import PAGE, zramd_bin

SERIES = ["zram_orig_data_size_bytes", "zram_compr_data_size_bytes", "zram_mem_used_total_bytes",
          "zram_mem_limit_bytes", "zram_mem_used_max_bytes", "zram_same_pages", "zram_pages_compacted_total",
          "zram_huge_pages", "zram_huge_pages_since_total", "zram_failed_reads_total", "zram_failed_writes_total",
          "zram_invalid_io_total", "zram_notify_free_total", "zram_bd_count_pages", "zram_bd_reads_pages_total",
          "zram_bd_writes_pages_total", "zram_disksize_bytes"]


def promtool():
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: apt-get install -y prometheus (the Makefile's test target installs it)")
    return path


def samples(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_metrics_exposition_passes_promtool(wb_server, corpus):
    s = wb_server
    s.http.post("/sys/class/zram-control/hot_add")
    pages = corpus.compressible(5) + corpus.huge(1)
    s.http.put("/dev/zram0/pages?from=0", data=b"".join(pages))
    s.http.put("/dev/zram0/pages/10", data=bytes(PAGE))
    s.http.get("/dev/zram0/pages/0")
    s.http.get("/dev/zram0/pages/99")  # 404
    s.http.put("/dev/zram0/pages/0", data=b"short")  # 400, invalid_io
    s.http.delete("/dev/zram0/pages/1")
    s.put_attr("zram0", "idle", "all")
    s.put_attr("zram0", "writeback", "idle")
    s.http.get("/dev/zram0/pages/2")  # from the backing store
    r = s.http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    check = subprocess.run([promtool(), "check", "metrics"], input=r.text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    values = samples(r.text)
    for name in SERIES:
        for device in ("zram0", "zram1"):
            assert f'{name}{{device="{device}"}}' in values, (name, device)
    mm = s.stat("zram0", "mm_stat")
    io = s.stat("zram0", "io_stat")
    bd = s.stat("zram0", "bd_stat")
    z0 = lambda name: values[f'{name}{{device="zram0"}}']  # noqa: E731
    assert z0("zram_orig_data_size_bytes") == mm[0] == 6 * PAGE
    assert z0("zram_compr_data_size_bytes") == mm[1]
    assert z0("zram_same_pages") == mm[5] == 1
    assert z0("zram_invalid_io_total") == io[2] == 1
    assert z0("zram_notify_free_total") == io[3] == 1
    assert z0("zram_bd_count_pages") == bd[0] > 0
    assert z0("zram_bd_writes_pages_total") == bd[2]
    assert z0("zram_bd_reads_pages_total") == bd[1] == 1
    assert z0("zram_disksize_bytes") == 64 << 20
    assert values['zram_disksize_bytes{device="zram1"}'] == 0
    # Request counters by route and status, latency histograms.
    assert any(re.match(r'zramd_http_requests_total\{route="page_get",status="200"\}', k) for k in values)
    assert any(re.match(r'zramd_http_requests_total\{.*status="404".*\}', k) for k in values)
    assert any(k.startswith("zramd_http_request_duration_seconds_bucket{") for k in values)
    assert any(k.startswith('zramd_codec_duration_seconds_bucket{algorithm="lz4"') for k in values)
    assert "# TYPE zramd_http_requests_total counter" in r.text
    assert s.http.head("/metrics").status_code == 200
    assert s.http.post("/metrics").status_code == 405


def test_metrics_counters_survive_reset(server, corpus):
    """A counter mirrored from a device that was reset starts anew; promtool still accepts the exposition."""
    server.http.put("/dev/zram0/pages/0", data=b"x")
    server.http.get("/metrics")
    server.put_attr("zram0", "reset", "1")
    server.put_attr("zram0", "disksize", "1M")
    text = server.http.get("/metrics").text
    check = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert samples(text)['zram_invalid_io_total{device="zram0"}'] == 0


def test_zramd_stat_prints_a_table(server, corpus):
    server.http.put("/dev/zram0/pages?from=0", data=b"".join(corpus.compressible(3)))
    server.http.post("/sys/class/zram-control/hot_add")
    out = subprocess.run([str(zramd_bin()), "stat", "--server", server.base], capture_output=True, text=True,
                         timeout=20)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ALGORITHM", "DISKSIZE", "DATA", "COMPR", "TOTAL", "LIMIT", "SAME", "HUGE", "WB"]
    assert lines[1].split()[:4] == ["/dev/zram0", "lz4", "64M", "12K"]
    assert lines[2].split()[:3] == ["/dev/zram1", "lz4", "0B"]
    out = subprocess.run([str(zramd_bin()), "stat", "--bytes", "--server", server.base], capture_output=True,
                         text=True, timeout=20)
    assert out.returncode == 0
    row = out.stdout.splitlines()[1].split()
    assert row[2] == str(64 << 20) and row[3] == str(3 * PAGE)


def test_zramd_stat_unreachable_server_fails(server):
    port = server.port
    server.stop()
    out = subprocess.run([str(zramd_bin()), "stat", "--server", f"http://127.0.0.1:{port}"], capture_output=True,
                         text=True, timeout=20)
    assert out.returncode != 0
    assert "cannot connect" in out.stderr
