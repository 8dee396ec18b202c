"""Every command in docs/ runs.

Convention (stated at the top of docs/QUICKSTART.md):
- ```sh blocks run, in the order they appear in a file, each with `bash -euo pipefail`, in one
  working directory per file (files made by one block are there for the next) and against one
  zramd per file, started in that directory. `zramd` is on PATH, and `deploy/` is linked into
  the directory, so commands name deploy/ files as from the repository root.
- The docs address the server as 127.0.0.1:7070, the default; the test runs it on a free port
  and rewrites that address in the commands.
- `<!-- docs-test: zramd ARGS -->` on a line of its own (re)starts the server with ARGS for
  the blocks after it; a file starts with `zramd` and no arguments.
- ```console, ```text and the other kinds are shown, never run.

docs/API.md is also checked against the server (every route it documents is served) and against
api/openapi.yaml (the same routes); docs/ATTRIBUTES.md against the attribute table in
Sources/ZramDevice/Attributes.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO, Zramd, require_tool

DOCS = REPO / "docs"
OPERATOR_DOCS = ["QUICKSTART.md", "API.md", "ATTRIBUTES.md", "OPERATIONS.md"]
DIRECTIVE = re.compile(r"^<!-- docs-test: zramd(.*?) -->$")
FENCE = re.compile(r"^```(\S*)\s*$")


def steps(path: Path) -> list[tuple[str, str, int]]:
    """("server", args, line) and ("sh", block, line), in document order."""
    found, block, kind, start = [], None, None, 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fence = FENCE.match(line)
        if block is None:
            if fence:
                block, kind, start = [], fence[1], number
            elif m := DIRECTIVE.match(line.strip()):
                found.append(("server", m[1].strip(), number))
        elif fence and not fence[1]:
            if kind == "sh":
                found.append(("sh", "\n".join(block), start))
            block = None
        else:
            block.append(line)
    assert block is None, f"{path.name}: unclosed code block at line {start}"
    return found


def docs_with_commands() -> list[Path]:
    return sorted(p for p in DOCS.glob("*.md") if any(kind == "sh" for kind, _, _ in steps(p)))


def test_steps_are_extracted():
    sample = DOCS / "QUICKSTART.md"
    kinds = [kind for kind, _, _ in steps(sample)]
    assert kinds.count("sh") >= 5
    assert all("make run" not in text for kind, text, _ in steps(sample) if kind == "sh"), "console blocks never run"


def test_every_operator_doc_has_commands():
    for name in OPERATOR_DOCS:
        assert (DOCS / name).exists(), f"docs/{name} is missing"
        assert any(kind == "sh" for kind, _, _ in steps(DOCS / name)), f"docs/{name} has no ```sh example"


@pytest.mark.parametrize("doc", docs_with_commands(), ids=lambda p: p.name)
def test_doc_commands_run(doc: Path, zramd_bin: Path, tmp_path: Path):
    require_tool("curl", "curl")
    bash = require_tool("bash", "bash")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "zramd").symlink_to(zramd_bin)
    work = tmp_path / "work"
    work.mkdir()
    (work / "deploy").symlink_to(REPO / "deploy")
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    server, ran = None, 0

    def start(args: str) -> Zramd:
        nonlocal server
        if server:
            assert server.stop() == 0, server.output()
        server = Zramd(zramd_bin, work, shlex.split(args), env=env, name=f"zramd-{doc.stem}")
        return server

    try:
        start("")
        for kind, text, line in steps(doc):
            if kind == "server":
                start(text)
                continue
            script = text.replace("127.0.0.1:7070", f"127.0.0.1:{server.port}")
            result = subprocess.run([bash, "-euo", "pipefail", "-c", script], cwd=work, env=env,
                                    capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, (
                f"docs/{doc.name} line {line}: the block exited {result.returncode}\n--- block\n{text}\n"
                f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}\n--- server\n{server.output()}")
            ran += 1
        assert ran > 0
    finally:
        if server:
            server.stop()


# --------------------------------------------------------------------------------------------
# docs/API.md: the routes it documents

ROUTE = re.compile(r"^### (GET|HEAD|PUT|POST|DELETE) (/\S+)$", re.M)


def api_routes() -> set[tuple[str, str]]:
    routes = set(ROUTE.findall((DOCS / "API.md").read_text()))
    assert len(routes) >= 15, routes
    return routes


def concrete(template: str) -> str:
    return template.replace("{id}", "0").replace("{index}", "3").replace("{attr}", "mm_stat")


def test_api_routes_are_served(start_zramd):
    """Every documented route is one the server handles: not 404 'no such path', not 405."""
    server = start_zramd("--disksize", "16M")
    for method, template in sorted(api_routes()):
        path = concrete(template)
        if template.endswith("/pages"):
            path += "?from=0&count=1" if method != "PUT" else "?from=0"
        body = {"PUT": b"", "POST": b""}.get(method)
        if template.endswith("/{attr}") and method in ("PUT", "POST"):
            path = path.replace("mm_stat", "compact")
            body = b"1"
        status, answer, _ = server.request(method, path, body)
        assert status != 405, f"{method} {path}: 405 {answer!r}"
        assert b"no such path" not in answer, f"{method} {path}: {status} {answer!r}"
        assert not (status == 404 and b"ENODEV" in answer), f"{method} {path}: {answer!r}"


def test_api_doc_matches_openapi():
    contract = REPO / "api" / "openapi.yaml"
    if not contract.exists():
        pytest.fail("api/openapi.yaml is missing: docs/API.md is checked against it (merge the branch that adds it)")
    spec = yaml.safe_load(contract.read_text())
    served = set()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "head", "put", "post", "delete") and any(str(c).startswith("2") for c in op["responses"]):
                served.add((method.upper(), path))
    documented = api_routes()
    # HEAD of a page is documented for its headers; the other HEADs are GET without the body.
    required = {(m, p) for m, p in served if m != "HEAD"} | {("HEAD", "/dev/zram{id}/pages/{index}")}
    assert not required - documented, f"in api/openapi.yaml, not in docs/API.md: {sorted(required - documented)}"
    assert not documented - served, f"in docs/API.md, not in api/openapi.yaml: {sorted(documented - served)}"


# --------------------------------------------------------------------------------------------
# docs/ATTRIBUTES.md: every attribute the device has


def test_every_attribute_is_documented():
    sources = " ".join(p.read_text() for p in (REPO / "Sources" / "ZramDevice" / "Attributes").glob("*.swift"))
    attributes = set(re.findall(r'Attribute\(\s*"(\w+)"', sources))
    assert len(attributes) >= 20, attributes
    text = (DOCS / "ATTRIBUTES.md").read_text()
    documented = set(re.findall(r"^### `(\w+)`", text, re.M))
    assert attributes - documented == set(), f"undocumented: {sorted(attributes - documented)}"
    assert documented - attributes <= {"max_comp_streams"}, f"documented but absent: {sorted(documented - attributes)}"
