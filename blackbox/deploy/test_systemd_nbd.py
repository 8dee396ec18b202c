"""deploy/systemd: the NBD swap pair (zramd-nbd-client.service + dev-nbd0.swap) passes
`systemd-analyze verify`, and the service's nbd-client command line names an export that a
zramd started with --nbd-listen serves. No kernel nbd module here: the attach and swapon
themselves are not run (docs/OPERATIONS.md says so)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import DEPLOY, require_tool
from test_systemd import unit_entries, values

SYSTEMD = DEPLOY / "systemd"
PAIR = ["zramd-nbd-client.service", "dev-nbd0.swap"]


def test_nbd_swap_pair_verifies(tmp_path: Path):
    analyze = require_tool("systemd-analyze", "systemd")
    for name in PAIR:
        text = (SYSTEMD / name).read_text()
        # verify insists the binaries exist; nbd-client and modprobe are not installed in CI.
        for tool in ("/usr/sbin/nbd-client", "/sbin/modprobe", "/sbin/mkswap"):
            text = text.replace(tool, "/bin/true")
        (tmp_path / name).write_text(text)
    result = subprocess.run([analyze, "verify", *[str(tmp_path / n) for n in PAIR]],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        f"systemd-analyze verify:\n{result.stdout}{result.stderr}")


def test_pair_is_wired_together():
    service, swap = SYSTEMD / "zramd-nbd-client.service", SYSTEMD / "dev-nbd0.swap"
    assert values(swap, "What") == ["/dev/nbd0"]
    assert values(swap, "Requires") == ["zramd-nbd-client.service"]
    assert values(service, "Before") == ["dev-nbd0.swap"]
    start = values(service, "ExecStart")[0]
    assert "-N ${ZRAMD_NBD_EXPORT}" in start and start.endswith("/dev/nbd0")
    env = dict(kv.split("=", 1) for kv in values(service, "Environment")[0].split())
    assert env["ZRAMD_NBD_EXPORT"] == "zram0" and env["ZRAMD_NBD_PORT"] == "10809"
    assert int(values(swap, "Priority")[0]) < 100, "below the local swap the docs recommend"
