"""Schemathesis against api/openapi.yaml and the release binary (fuzz_api.py does the work).

ZRAMD_API_FUZZ_EXAMPLES / _RUNS / _MIN_CASES size it: `make test` runs about 2,000 cases,
`make soak` at least 5,000.
"""

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_schemathesis_finds_no_failure_and_the_server_survives(zramd_bin_path):
    examples = os.environ.get("ZRAMD_API_FUZZ_EXAMPLES", "40")
    runs = os.environ.get("ZRAMD_API_FUZZ_RUNS", "1")
    min_cases = os.environ.get("ZRAMD_API_FUZZ_MIN_CASES", "300")
    out = subprocess.run([sys.executable, str(HERE / "fuzz_api.py"), "--binary", str(zramd_bin_path),
                          "--examples", examples, "--runs", runs, "--seed", os.environ.get("ZRAMD_API_FUZZ_SEED", "1"),
                          "--min-cases", min_cases], capture_output=True, text=True, timeout=3000)
    print(out.stdout[-3000:])
    assert out.returncode == 0, out.stdout[-20000:] + out.stderr[-5000:]


def test_a_plain_schemathesis_run_passes(zramd_factory):
    """`schemathesis run api/openapi.yaml --checks all` from the repository root, no hooks, against
    a server with default options: every check, including positive_data_acceptance (with the
    rejections the contract cannot express allowed in schemathesis.toml) and the Allow header."""
    s = zramd_factory()
    repo = HERE.parents[1]
    out = subprocess.run(["schemathesis", "run", "api/openapi.yaml", "--checks", "all", "--url", s.base,
                          "--seed", os.environ.get("ZRAMD_API_FUZZ_SEED", "1"), "--no-color"],
                         cwd=repo, capture_output=True, text=True, timeout=900)
    tail = out.stdout[-6000:]
    print(tail)
    assert out.returncode == 0 and " passed" in tail and "failed" not in tail, tail + out.stderr[-3000:]
