#!/usr/bin/env python3
"""API fuzzing: schemathesis against api/openapi.yaml and the release zramd binary.

    python3 blackbox/reliability/fuzz_api.py --examples 8 [--seed 1] [--report out.json]

Starts zramd on a loopback port (two devices, 16 MiB, a SQLite backing store each), runs every
schemathesis phase (examples, coverage, fuzzing, stateful over the OpenAPI links PUT page -> GET /
HEAD / DELETE page, DELETE -> GET, batch PUT -> GET) with these checks:

  not_a_server_error, status_code_conformance, content_type_conformance,
  response_headers_conformance, response_schema_conformance, negative_data_rejection,
  missing_required_header, unsupported_method, use_after_free, ensure_resource_availability,
  ignored_auth, allow_header_conformance

Left out: positive_data_acceptance, because the contract cannot express which bodies an
attribute or a batch takes, nor that a device must be initialised for page I/O; the plain run
(test_fuzz_api.py::test_a_plain_schemathesis_run_passes, schemathesis.toml) checks it with those
rejections allowed, operation by operation.

Then: the server must still be running, answer /healthz, and exit 0 on SIGTERM; 5xx answers are
allowed only as the documented 503 (with Retry-After) and 507. Prints one result line and exits
non-zero on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance", "negative_data_rejection",
          "missing_required_header", "unsupported_method", "use_after_free", "ensure_resource_availability",
          "ignored_auth", "allow_header_conformance"]


def start_server(binary: Path, data_dir: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    log = open(log_path, "w")
    proc = subprocess.Popen([str(binary), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir),
                             "--num-devices", "2", "--disksize", "16M", "--backing-dev", "fuzz.sqlite",
                             "--max-batch-pages", "64", "--workers", "2"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        m = re.search(r"listening on [0-9.]+:(\d+)", log_path.read_text())
        if m:
            return proc, f"http://127.0.0.1:{m.group(1)}"
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"zramd did not start:\n{log_path.read_text()}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1, help="runs with seeds seed, seed+1, ... (a fresh server each)")
    ap.add_argument("--binary", default=os.environ.get("ZRAMD_BIN", str(REPO / ".build-rel" / "release" / "zramd")))
    ap.add_argument("--examples", type=int, default=8, help="schemathesis --max-examples (per operation and phase)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-time", type=int, default=0, help="seconds; 0 = until every phase is done")
    ap.add_argument("--report", default=None, help="where to keep the JSON report")
    ap.add_argument("--min-cases", type=int, default=1)
    args = ap.parse_args()
    total, failed = 0, 0
    for i in range(args.runs):
        cases, ok = run_once(args, args.seed + i)
        total += cases
        failed += not ok
    print(f"api fuzz total: {total} cases in {args.runs} run(s), {failed} failed run(s)")
    if total < args.min_cases:
        print(f"only {total} cases ran (at least {args.min_cases} expected)")
        return 1
    return 1 if failed else 0


def run_once(args, seed: int) -> tuple[int, bool]:
    work = Path(tempfile.mkdtemp(prefix="zramd-apifuzz-"))
    report = Path(args.report) if args.report else work / "report.json"
    proc, url = start_server(Path(args.binary), work / "data", work / "server.log")
    env = dict(os.environ, ZRAMD_URL=url, SCHEMATHESIS_HOOKS="st_hooks", ZRAMD_FUZZ_SEED=str(seed),
               PYTHONPATH=str(Path(__file__).resolve().parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = ["schemathesis", "run", str(REPO / "api" / "openapi.yaml"), "--url", url, "--checks", ",".join(CHECKS),
           "--max-examples", str(args.examples), "--seed", str(seed), "--generation-database", "none",
           "--workers", "1", "--request-timeout", "30", "--no-color", "--suppress-health-check", "all",
           "--phases", "examples,coverage,fuzzing,stateful",
           "--report", "json", "--report-json-path", str(report)]
    if args.max_time:
        cmd += ["--max-time", str(args.max_time)]
    problems: list[str] = []
    result: dict = {}
    generated = 0
    try:
        out = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True, timeout=3600)
        (work / "schemathesis.txt").write_text(out.stdout + out.stderr)
        if proc.poll() is not None:
            problems.append(f"zramd died during the run (exit {proc.returncode})")
        else:
            try:
                if requests.get(url + "/healthz", timeout=10).status_code != 200:
                    problems.append("/healthz does not answer 200 after the run")
            except requests.RequestException as e:
                problems.append(f"/healthz unreachable after the run: {e}")
        result = json.loads(report.read_text()) if report.exists() else {}
        cases = result.get("test_cases", {})
        generated = cases.get("generated", 0)
        if out.returncode != 0:
            problems.append(f"schemathesis exited {out.returncode}")
        if result.get("failures") or result.get("errors"):
            problems.append(f"{len(result.get('failures', []))} failures, {len(result.get('errors', []))} errors")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            if code != 0:
                problems.append(f"zramd exited {code} on SIGTERM")
    log = (work / "server.log").read_text()
    if "Fatal error" in log or "Backtrace" in log:
        problems.append("zramd logged a crash")
    phases = {k: v.get("status") for k, v in result.get("phases", {}).items()} if result else {}
    print(f"api fuzz: {generated} cases, seed {seed}, {cases.get('with_failures', 0)} with failures, "
          f"phases {phases}, server {'ok' if not problems else 'NOT ok'} (details in {work})")
    if problems:
        text = (work / "schemathesis.txt").read_text() if (work / "schemathesis.txt").exists() else ""
        print(text[-20000:])
        print("\n".join(problems))
        return generated, False
    return generated, True


if __name__ == "__main__":
    sys.exit(main())
