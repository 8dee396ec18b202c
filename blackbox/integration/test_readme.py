"""README.md's curl examples run verbatim against a server on the default address 127.0.0.1:7070."""

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import REPO


def readme_path() -> Path:
    return Path(os.environ.get("ZRAMD_README", REPO / "README.md"))


def curl_lines(text: str) -> list[str]:
    """Every line starting with `curl ` inside a ```sh block, in order."""
    lines = []
    for block in re.findall(r"^```sh[ \t]*\n(.*?)^```", text, re.M | re.S):
        lines += [line.strip() for line in block.splitlines() if line.startswith("curl ")]
    return lines


def test_curl_lines_are_extracted():
    sample = "x\n```sh\ncurl -f http://a\n# no\ncurl -f http://b\n```\n```\ncurl not sh\n```\n```sh\ncurl c\n```\n"
    assert curl_lines(sample) == ["curl -f http://a", "curl -f http://b", "curl c"]


def port_7070_free() -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", 7070))
        except OSError:
            return False
    return True


def test_readme_curl_examples_run_verbatim(zramd_factory, corpus, tmp_path):
    path = readme_path()
    assert path.is_file(), f"{path} is missing"
    commands = curl_lines(path.read_text())
    if not commands:
        pytest.fail(f"{path} has no ```sh block with lines starting with `curl ` (the Quick start section)")
    assert all("127.0.0.1:7070" in c for c in commands if "http://" in c), commands
    if not port_7070_free():
        pytest.skip("127.0.0.1:7070 is taken by another process; the README's examples need that address")
    # As `make run` starts it: the defaults (zram0, 1 GiB, lz4), only the data directory is private.
    zramd_factory(listen="127.0.0.1:7070")
    work = tmp_path / "readme"
    work.mkdir()
    page = corpus.compressible(1)[0]
    (work / "page.bin").write_bytes(page)
    for command in commands:
        done = subprocess.run(["bash", "-c", command], cwd=work, capture_output=True, timeout=60)
        assert done.returncode == 0, (
            f"README command failed (exit {done.returncode}): {command}\n"
            f"{done.stderr.decode(errors='replace')}{done.stdout.decode(errors='replace')[:500]}")
        if (work / "copy.bin").exists():
            assert (work / "copy.bin").read_bytes() == page, f"copy.bin differs from page.bin after: {command}"
