"""deploy/prometheus: promtool checks the config and the rules and runs their unit tests; a real
Prometheus scrapes a real zramd with that config and those rules, and the alerts fire when the
device is pushed into them."""

from __future__ import annotations

import os
import subprocess

import yaml

from conftest import DEPLOY, PAGE, require_tool, wait_until

PROMETHEUS = DEPLOY / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess:
    tool = require_tool("promtool", "prometheus")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, cwd=PROMETHEUS)


def test_promtool_check_config():
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rule files found" in result.stdout + result.stderr


def test_promtool_check_rules():
    result = promtool("check", "rules", "zramd-rules.yml", "zramd-alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout + result.stderr


def test_promtool_test_rules():
    tests = sorted(p.name for p in (PROMETHEUS / "tests").glob("*.yml"))
    assert tests, "no promtool unit tests"
    result = promtool("test", "rules", *[f"tests/{t}" for t in tests])
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_zramd(monitoring):
    """One series through Prometheus's HTTP API equals what zramd says right now."""
    mm = [int(x) for x in monitoring.zramd.request("GET", "/sys/block/zram0/mm_stat")[1].split()]
    orig = monitoring.wait_value('zram_orig_data_size_bytes{device="zram0",job="zramd"}', lambda v: v == mm[0],
                                 f"orig_data_size {mm[0]}")
    assert orig == mm[0] > 0
    assert monitoring.value('up{job="zramd"}') == 1
    # Every rule loaded and evaluates without error.
    groups = monitoring.api("rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    in_files = [r for f in ("zramd-rules.yml", "zramd-alerts.yml")
                for g in yaml.safe_load((PROMETHEUS / f).read_text())["groups"] for r in g["rules"]]
    assert len(rules) == len(in_files), [r["name"] for r in rules]
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    # Recording rules produce the ratios from the live series.
    ratio = monitoring.wait_value('zram:compression_ratio{device="zram0"}', lambda v: v > 1, "compression ratio")
    assert abs(ratio - mm[0] / mm[1]) / ratio < 0.5
    monitoring.wait_value('zram:allocator_efficiency:ratio{device="zram0"}', lambda v: 0 < v <= 1, "allocator efficiency")
    monitoring.wait_value('zram:bd_writes_bytes:rate5m{device="zram0"}', lambda v: v > 0, "writeback rate")


def test_alerts_fire_on_a_live_device(monitoring):
    zramd = monitoring.zramd
    # Fill the 1 MiB mem_limit with incompressible pages until writes fail with 507.
    statuses = []
    for i in range(1000, 1000 + 300):
        status, _, _ = zramd.request("PUT", f"/dev/zram0/pages/{i}", os.urandom(PAGE))
        statuses.append(status)
        if status == 507:
            break
    assert statuses[-1] == 507 and set(statuses[:-1]) == {204}, statuses
    monitoring.wait_value('zram:mem_limit_usage:ratio{device="zram0"}', lambda v: v > 0.9, "memory near the limit")

    def alert_state(name: str, state: str):
        return lambda: any(a["state"] == state for a in monitoring.alerts(name))
    wait_until(alert_state("ZramFailedWritesRising", "firing"), 30, "ZramFailedWritesRising firing")
    # for: 5m, so it stays pending within a test's time.
    wait_until(alert_state("ZramMemoryNearLimit", "pending"), 30, "ZramMemoryNearLimit pending")

    # An exhausted writeback budget: writeback refused with 503, twice, with a scrape between.
    assert zramd.request("PUT", "/sys/block/zram0/writeback_limit_enable", b"1")[0] == 204
    assert zramd.request("PUT", "/sys/block/zram0/writeback_limit", b"0")[0] == 204
    assert zramd.request("PUT", "/sys/block/zram0/idle", b"all")[0] == 204
    assert zramd.request("PUT", "/sys/block/zram0/writeback", b"idle")[0] == 503
    monitoring.wait_value('zramd_http_requests_total{route="attr_put",status="503"}', lambda v: v >= 1, "the first 503")
    assert zramd.request("PUT", "/sys/block/zram0/writeback", b"idle")[0] == 503
    wait_until(alert_state("ZramWritebackRefused", "firing"), 30, "ZramWritebackRefused firing")
    assert not monitoring.alerts("ZramFailedReadsRising") and not monitoring.alerts("ZramdDown")
