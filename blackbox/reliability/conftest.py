"""Fixtures of the reliability suite; the server and corpus helpers come from blackbox/integration/conftest.py.

Environment: ZRAMD_BIN (the release binary), ZRAMD_CORPUS (the page corpus), as the integration suite.
"""

from __future__ import annotations

import importlib.util
import os
import resource
import signal
import subprocess
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "zramd_integration_conftest", Path(__file__).resolve().parents[1] / "integration" / "conftest.py")
itc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(itc)

PAGE = itc.PAGE
ERROR_BODY = itc.ERROR_BODY
Zramd = itc.Zramd
raw_request = itc.raw_request
status_of = itc.status_of
# The same fixtures as the integration suite.
corpus = itc.corpus
tokens = itc.tokens


@pytest.fixture(scope="session")
def zramd_bin_path() -> Path:
    return itc.zramd_bin()


@pytest.fixture(autouse=True)
def _forget_recorded_responses():
    # The integration suite's client records every response for its contract check; that check
    # is not used here (schemathesis does it), so the list is emptied after each test.
    yield
    itc._recorded.clear()


@pytest.fixture
def zramd_factory(tmp_path):
    """start(*args, env=None, data_dir=None) -> Zramd; servers still running at teardown must exit 0 on SIGTERM."""
    started: list[Zramd] = []
    counter = iter(range(1000))

    def start(*args: str, env: dict | None = None, data_dir: Path | None = None) -> Zramd:
        server = Zramd(list(args), data_dir or tmp_path / f"data{next(counter)}", env=env)
        started.append(server)
        return server

    yield start
    failures = []
    for server in started:
        if server.exit_code is not None:
            continue
        code = server.stop()
        if code != 0:
            failures.append(f"zramd {' '.join(server.args)} exited {code}:\n" + "".join(server.stderr[-20:]))
    assert not failures, "\n".join(failures)


def raise_nofile(needed: int):
    """Raises this process's descriptor limit (zramd inherits it) to `needed`, or fails the test."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.fail(f"ulimit -n is {soft} (hard {hard}); {needed} descriptors are needed")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def kill9(server: Zramd) -> None:
    """SIGKILL, as a crash would."""
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)
    server.exit_code = -9
    server.http.close()


