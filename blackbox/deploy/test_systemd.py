"""deploy/systemd: the units pass `systemd-analyze verify` (warnings count as failures), the
service's ExecStart, expanded as systemd would, starts a working zramd, and the writeback
policy script writes idle pages back through the admin token."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from conftest import DEPLOY, Process, free_port, healthy, page_for, request, require_tool, wait_until

SYSTEMD = DEPLOY / "systemd"
UNITS = ["zramd.service", "zramd-writeback.service", "zramd-writeback.timer"]


def unit_entries(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, continuation lines joined."""
    entries, section, pending = [], None, ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.append((section, key.strip(), value.strip()))
    return entries


def values(path: Path, key: str) -> list[str]:
    return [v for _, k, v in unit_entries(path) if k == key]


def test_units_verify(zramd_bin: Path, tmp_path: Path):
    analyze = require_tool("systemd-analyze", "systemd")
    # verify insists the binaries exist: a copy of each unit pointing at the built ones.
    for name in UNITS:
        text = (SYSTEMD / name).read_text()
        text = text.replace("/usr/local/bin/zramd", str(zramd_bin))
        text = text.replace("/usr/local/libexec/zramd-writeback", str(SYSTEMD / "zramd-writeback"))
        (tmp_path / name).write_text(text)
    result = subprocess.run([analyze, "verify", *[str(tmp_path / n) for n in UNITS]],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    # verify exits 0 on unknown keys and bad values; any message at all is a failure here.
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        f"systemd-analyze verify:\n{result.stdout}{result.stderr}")


def test_service_is_hardened():
    unit = SYSTEMD / "zramd.service"
    settings = {k: v for _, k, v in unit_entries(unit)}
    for key, expected in {
        "DynamicUser": "yes", "ProtectSystem": "strict", "StateDirectory": "zramd", "ProtectHome": "yes",
        "PrivateTmp": "yes", "PrivateDevices": "yes", "NoNewPrivileges": "yes", "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "MemoryDenyWriteExecute": "yes",
        "KillSignal": "SIGTERM",
    }.items():
        assert settings.get(key) == expected, f"{key}={settings.get(key)!r}, expected {expected!r}"
    assert int(settings["LimitNOFILE"]) >= 4096
    exec_start = settings["ExecStart"]
    assert "--data-dir ${STATE_DIRECTORY}" in exec_start, "the data dir must be the StateDirectory"
    assert "${CREDENTIALS_DIRECTORY}/admin-token" in exec_start, "the admin token comes from LoadCredential"
    assert values(unit, "LoadCredential") == ["admin-token:/etc/zramd/admin-token"]


def size(text: str) -> int:
    m = re.fullmatch(r"(\d+)([KMGT]?)", text.strip())
    assert m, f"not a size: {text!r}"
    return int(m[1]) << {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m[2]]


def default_environment(unit: Path) -> dict[str, str]:
    env = {}
    for assignment in values(unit, "Environment"):
        for word in shlex.split(assignment):
            key, _, value = word.partition("=")
            env[key] = value
    return env


def test_memory_max_covers_mem_limit():
    """MemoryMax leaves room for the slot table (16 bytes a page of disksize) and 256 MiB of runtime."""
    unit = SYSTEMD / "zramd.service"
    env = default_environment(unit)
    settings = {k: v for _, k, v in unit_entries(unit)}
    mem_limit, disksize = size(env["ZRAMD_MEM_LIMIT"]), size(env["ZRAMD_DISKSIZE"])
    needed = mem_limit + disksize // 4096 * 16 + (256 << 20)
    assert size(settings["MemoryHigh"]) >= needed, (settings["MemoryHigh"], needed)
    assert size(settings["MemoryMax"]) >= size(settings["MemoryHigh"])


def expand_exec_start(unit: Path, env: dict[str, str]) -> list[str]:
    """ExecStart as systemd expands it: ${VAR} is one word, $VAR splits into words."""
    (command,) = values(unit, "ExecStart")
    argv = []
    for word in shlex.split(command):
        m = re.fullmatch(r"\$([A-Z_]+)", word)
        if m:
            argv += env.get(m[1], "").split()
        else:
            argv.append(re.sub(r"\$\{([A-Z_]+)\}", lambda g: env[g[1]], word))
    return argv


def test_exec_start_runs_and_writeback_policy(zramd_bin: Path, tmp_path: Path):
    """The unit's own command line, with systemd's variables filled in, serves; the timer's
    script then marks pages idle and writes them back using the credential."""
    require_tool("curl", "curl")
    unit = SYSTEMD / "zramd.service"
    port = free_port()
    state, creds = tmp_path / "state", tmp_path / "credentials"
    state.mkdir(mode=0o700)
    creds.mkdir(mode=0o700)
    token = "t0ken-" + os.urandom(8).hex()
    (creds / "admin-token").write_text(token + "\n")
    env = default_environment(unit)
    env.update(ZRAMD_LISTEN=f"127.0.0.1:{port}", ZRAMD_DISKSIZE="64M", STATE_DIRECTORY=str(state),
               CREDENTIALS_DIRECTORY=str(creds))
    argv = expand_exec_start(unit, env)
    assert argv[0] == "/usr/local/bin/zramd"
    server = Process([str(zramd_bin), *argv[1:]], tmp_path / "zramd.log", cwd=tmp_path)
    try:
        wait_until(lambda: healthy(port) or server.check_alive("zramd from ExecStart"), 20, "zramd from ExecStart")
        status, body, _ = request("GET", port, "/sys/block/zram0/backing_dev")
        assert (status, body) == (200, b"zram0-backing.sqlite\n")
        status, body, _ = request("GET", port, "/sys/block/zram0/mem_limit")
        assert int(body) == size(default_environment(unit)["ZRAMD_MEM_LIMIT"])
        status, _, _ = request("PUT", port, "/sys/block/zram0/compact", b"1")
        assert status == 401, "the admin token must guard /sys writes"
        for i in range(32):
            status, body, _ = request("PUT", port, f"/dev/zram0/pages/{i}", page_for(i))
            assert status == 204, body

        policy = subprocess.run(
            [str(SYSTEMD / "zramd-writeback")], capture_output=True, text=True, timeout=60,
            env={"PATH": os.environ["PATH"], "ZRAMD_URL": f"http://127.0.0.1:{port}", "ZRAMD_IDLE_AGE": "0",
                 "ZRAMD_WRITEBACK_BUDGET": "16", "CREDENTIALS_DIRECTORY": str(creds)})
        assert policy.returncode == 0, policy.stderr
        # A budget of 16 units (4 KiB each), spent page by page: 16 of the 32 idle pages went to the store.
        assert policy.stdout.split() == ["zram0:", "16", "0", "16"], policy.stdout
        for i in range(32):
            status, body, _ = request("GET", port, f"/dev/zram0/pages/{i}")
            assert status == 200 and body == page_for(i)
        assert request("GET", port, "/sys/block/zram0/writeback_limit")[1] == b"0\n"
        assert (state / "zram0-backing.sqlite").exists()
    finally:
        assert server.stop() == 0, f"SIGTERM must end zramd with 0\n{server.output()}"
