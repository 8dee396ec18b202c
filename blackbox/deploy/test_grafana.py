"""deploy/grafana/zramd.json, and the metric names of the dashboard, the recording rules and the
alerts: each exists in a real /metrics scrape of a zramd that has done page I/O (or is recorded
by the rules), every zram_* series is on the dashboard, and every panel's query returns data
from a real Prometheus scraping that zramd."""

from __future__ import annotations

import json
import re

import yaml

from conftest import DEPLOY

DASHBOARD = DEPLOY / "grafana" / "zramd.json"
RULE_FILES = [DEPLOY / "prometheus" / "zramd-rules.yml", DEPLOY / "prometheus" / "zramd-alerts.yml"]
# Series Prometheus makes itself for every target.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
            "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)                     # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)                    # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)  # label lists
    text = re.sub(r"\$\w+", " ", text)                         # Grafana variables
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[m.end():].lstrip()
        word = m.group(0)
        if following.startswith("(") or word.lower() in KEYWORDS:
            continue  # a function or aggregation, or a keyword
        if re.fullmatch(r"\d+[smhdwy]", word) or (m.start() > 0 and text[m.start() - 1].isdigit()):
            continue  # a duration or a number's exponent
        names.add(word)
    return names


def scraped_names(exposition: str) -> set[str]:
    return {line.split("{")[0].split(" ")[0] for line in exposition.splitlines() if line and not line.startswith("#")}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_exprs() -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in dashboard()["panels"] for t in p.get("targets", [])]


def rules() -> list[dict]:
    return [r for f in RULE_FILES for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"]]


def test_dashboard_structure():
    d = dashboard()
    assert d["uid"] == "zramd" and d["title"] and d["schemaVersion"] >= 36
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"] for v in d["templating"]["list"]}
    assert {"datasource", "instance", "device"} <= variables
    for p in d["panels"]:
        assert set(p["gridPos"]) == {"x", "y", "w", "h"} and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, p["title"]
        if p["type"] != "row":
            assert p["targets"] and p["datasource"]["uid"] == "${datasource}", p["title"]
            assert all(t["expr"].strip() and t["refId"] for t in p["targets"]), p["title"]
            used = set(re.findall(r"\$(\w+)", " ".join(t["expr"] for t in p["targets"])))
            assert used <= variables | {"__rate_interval"}, (p["title"], used)


def test_metric_names_exist_in_a_real_scrape(monitoring):
    scraped = scraped_names(monitoring.zramd.metrics())
    recorded = {r["record"] for r in rules() if "record" in r}
    used = {}
    for title, expr in dashboard_exprs():
        for name in metric_names(expr):
            used.setdefault(name, []).append(f"dashboard panel {title!r}")
    for r in rules():
        for name in metric_names(r["expr"]):
            used.setdefault(name, []).append(f"rule {r.get('record') or r.get('alert')}")
    assert len(used) >= 15, sorted(used)
    missing = {n: where for n, where in used.items() if n not in scraped | recorded | SYNTHETIC}
    assert not missing, f"not in zramd's /metrics: {missing}"
    # Rules only build on zramd's series or on each other, and every zram_* series is on the dashboard.
    on_dashboard = {n for _, e in dashboard_exprs() for n in metric_names(e)}
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in scraped if n.startswith(("zram_", "zramd_"))}
    shown = {re.sub(r"_(bucket|sum|count)$", "", n) for n in on_dashboard}
    assert families <= shown, f"series missing from the dashboard: {sorted(families - shown)}"


def test_every_panel_query_returns_data(monitoring):
    """Each panel's query, with the dashboard's variables set to All, gives at least one series."""
    empty = []
    for title, expr in dashboard_exprs():
        query = expr.replace("$__rate_interval", "1m").replace("$instance", ".*").replace("$device", ".*")
        if not monitoring.query(query):
            empty.append((title, query))
    assert not empty, f"panels without data: {empty}"


def test_metric_name_extraction():
    assert metric_names('histogram_quantile(0.99, sum by (route, le) (rate(a_bucket{x=~"$i"}[$__rate_interval])))') == {"a_bucket"}
    assert metric_names("zram:x / (b > 0) * 4096 and on(instance) up offset 5m") == {"zram:x", "b", "up"}
    assert metric_names('increase(c_total{route="attr_put", status="503"}[15m]) > 1e3') == {"c_total"}
