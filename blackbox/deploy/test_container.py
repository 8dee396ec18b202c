"""deploy/container/Containerfile, without a container engine: its stages, user, healthcheck and
ports are parsed and checked; every shared library the built binary loads (ldd) is provided by
a package the runtime stage installs (or one those depend on); the image's command line and
healthcheck run for real against the built binary."""

from __future__ import annotations

import functools
import json
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import DEPLOY, REPO, Process, free_port, healthy, require_tool, wait_until

CONTAINERFILE = DEPLOY / "container" / "Containerfile"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arg for k, arg in self.instructions if k == keyword]

    def one(self, keyword: str) -> str:
        found = self.all(keyword)
        assert len(found) == 1, f"stage {self.name}: expected one {keyword}, found {found}"
        return found[0]


def parse(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with continuation lines joined and ARGs substituted in FROM."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    logical, pending = [], ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") and not pending:
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        line = pending + stripped
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if line:
            logical.append(line)
    assert not pending, "the Containerfile ends in a continuation"
    for line in logical:
        keyword, _, arg = line.partition(" ")
        keyword, arg = keyword.upper(), arg.strip()
        if keyword == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], arg.split()[0])
            name = arg.split()[2] if len(arg.split()) == 3 and arg.split()[1].upper() == "AS" else None
            stages.append(Stage(image, name))
        elif keyword == "ARG" and not stages:
            key, _, value = arg.partition("=")
            args[key] = value
        else:
            assert stages, f"{keyword} before FROM"
            stages[-1].instructions.append((keyword, arg))
    return args, stages


@pytest.fixture(scope="module")
def stages() -> tuple[Stage, Stage]:
    _, found = parse(CONTAINERFILE)
    assert [s.name for s in found] == ["build", "runtime"], "two stages: build and runtime"
    return found[0], found[1]


def apt_packages(stage: Stage) -> set[str]:
    """Package names passed to apt-get install in the stage's RUN instructions."""
    names = set()
    for run in stage.all("RUN"):
        for command in re.split(r"&&|;", run):
            words = shlex.split(command)
            if "apt-get" in words and "install" in words:
                names |= {w for w in words[words.index("install") + 1:] if not w.startswith("-")}
    return names


def exec_form(arg: str) -> list[str]:
    value = json.loads(arg)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), f"not exec form: {arg}"
    return value


def test_stages_and_images(stages):
    build, runtime = stages
    args, _ = parse(CONTAINERFILE)
    assert build.base.startswith("swift:") and build.base.endswith("-" + args["DEBIAN_RELEASE"]), build.base
    assert runtime.base == f"debian:{args['DEBIAN_RELEASE']}-slim", runtime.base
    # The Swift toolchain in the image is the one the project builds with.
    swift = require_tool("swift", "the Swift toolchain (/opt/swift/usr/bin on PATH)")
    version = subprocess.run([swift, "--version"], capture_output=True, text=True).stdout
    assert f"Swift version {args['SWIFT_VERSION']}" in version, (args["SWIFT_VERSION"], version)
    (copy,) = [c for c in runtime.all("COPY") if c.startswith("--from=")]
    assert copy == "--from=build /out/zramd /usr/local/bin/zramd"


def test_build_stage_has_every_source_and_dev_package(stages):
    build, _ = stages
    manifest = (REPO / "Package.swift").read_text()
    providers = set(re.findall(r'apt: "([^"]+)"', manifest))
    assert providers, "Package.swift names its apt providers"
    assert providers | {"pkg-config"} <= apt_packages(build), providers - apt_packages(build)
    # Every target's directory is copied in: SwiftPM refuses a manifest whose target paths are missing.
    copied = {c.split()[0].rstrip("/") for c in build.all("COPY")}
    dirs = set()
    calls = list(re.finditer(r'(\.target|\.executableTarget|\.testTarget|systemLibrary)\(\s*(?:name: )?"(\w+)"', manifest))
    assert calls, "no targets found in Package.swift"
    for call, following in zip(calls, calls[1:] + [None]):
        body = manifest[call.end():following.start() if following else len(manifest)]
        path = re.search(r'path: "([^"]+)"', body)
        default = "Tests" if call[1] == ".testTarget" else "Sources"
        dirs.add(path[1] if path else f"{default}/{call[2]}")
    for d in sorted(dirs):
        assert (REPO / d).is_dir(), d
        assert any(d == c or d.startswith(c + "/") for c in copied), f"{d} is not copied into the build stage"
    assert "Package.swift" in copied
    (build_run,) = [r for r in build.all("RUN") if "swift build" in r]
    assert "--product zramd" in build_run and "-c release" in build_run and "--static-swift-stdlib" in build_run


def test_runtime_stage_user_port_healthcheck(stages):
    _, runtime = stages
    user = runtime.one("USER")
    assert user.split(":")[0] not in ("0", "root"), "the image must not run as root"
    cmd = exec_form(runtime.one("CMD"))
    listen = cmd[cmd.index("--listen") + 1]
    assert runtime.one("EXPOSE") == listen.rsplit(":", 1)[1]
    data_dir = cmd[cmd.index("--data-dir") + 1]
    assert exec_form(runtime.one("VOLUME")) == [data_dir]
    assert runtime.one("WORKDIR") == data_dir
    assert exec_form(runtime.one("ENTRYPOINT")) == ["/usr/local/bin/zramd"]
    health = runtime.one("HEALTHCHECK")
    assert "/healthz" in health and " CMD " in f" {health}"
    assert runtime.one("STOPSIGNAL") == "SIGTERM"
    assert any("useradd" in r and "--uid " + user.split(":")[0] in r for r in runtime.all("RUN"))


@functools.lru_cache(maxsize=None)
def package_of(path: str) -> str:
    """The Debian package shipping a library path (usrmerge: /lib is /usr/lib)."""
    candidates = [path, str(Path(path).resolve())]
    candidates = ["/usr" + p for p in candidates if not p.startswith("/usr/")] + candidates
    for candidate in candidates:
        result = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if result.returncode == 0:
            return result.stdout.split(":")[0]
    pytest.fail(f"no Debian package ships {path}")


def depends_closure(packages: set[str]) -> set[str]:
    """The packages plus everything they depend on (installed packages' Depends and Pre-Depends)."""
    seen, todo = set(), list(packages)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        result = subprocess.run(["dpkg-query", "-W", "-f=${Depends},${Pre-Depends}", name],
                                capture_output=True, text=True)
        if result.returncode != 0:
            continue  # not installed here: it cannot be what ldd found either
        for alternative in re.split(r"[,|]", result.stdout):
            dep = alternative.strip().split(" ")[0].split(":")[0]
            if dep:
                todo.append(dep)
    return seen


def test_runtime_stage_provides_every_shared_library(stages, zramd_bin: Path):
    build, runtime = stages
    ldd = require_tool("ldd", "libc-bin")
    readelf = require_tool("readelf", "binutils")
    named = apt_packages(runtime)
    lines = subprocess.run([ldd, str(zramd_bin)], capture_output=True, text=True, check=True).stdout.splitlines()
    resolved = {}
    for line in lines:
        m = re.match(r"\s*(\S+) => (\S+)", line)
        if m:
            assert m[2] != "not", f"ldd: {line.strip()}"
            resolved[m[1]] = m[2]
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                        subprocess.run([readelf, "-d", str(zramd_bin)], capture_output=True, text=True, check=True).stdout)
    assert needed and resolved
    swift_runtime = {so for so, path in resolved.items() if "/swift/" in path}
    if swift_runtime:
        # A dynamically linked build here; the image links the Swift runtime statically.
        assert any("--static-swift-stdlib" in r for r in build.all("RUN")), sorted(swift_runtime)
    closure = depends_closure(named | {"libc6"})  # libc6 is essential: in every Debian image
    missing = {}
    for so, path in sorted(resolved.items()):
        if so in swift_runtime:
            continue
        package = package_of(path)
        if so in needed and package not in named | {"libc6"}:
            missing[so] = f"{package} (linked directly: name it in the runtime stage)"
        elif package not in closure:
            missing[so] = f"{package} (not a dependency of {sorted(named)})"
    # The Swift runtime's own C++ and unwinder libraries, which a static stdlib still loads.
    for so, package in {"libstdc++.so.6": "libstdc++6", "libgcc_s.so.1": "libgcc-s1"}.items():
        if so in resolved and package not in named:
            missing[so] = f"{package} (the Swift runtime loads it)"
    assert not missing, f"runtime stage lacks: {missing}"
    for package in named:
        assert package in {package_of(p) for p in resolved.values() if "/swift/" not in p}, (
            f"{package} is installed in the runtime stage but the binary does not use it")


def test_image_command_and_healthcheck_run(stages, zramd_bin: Path, tmp_path: Path):
    """The image's CMD (listen address and paths mapped to the test's) serves; its HEALTHCHECK
    command passes against it and fails once it is gone."""
    bash = require_tool("bash", "bash")
    _, runtime = stages
    cmd = exec_form(runtime.one("CMD"))
    port = free_port()
    token = tmp_path / "admin-token"
    token.write_text("secret\n")
    data_dir = cmd[cmd.index("--data-dir") + 1]
    mapped = {cmd[cmd.index("--listen") + 1]: f"127.0.0.1:{port}", data_dir: str(tmp_path / "data"),
              cmd[cmd.index("--admin-token-file") + 1]: str(token)}
    argv = [str(zramd_bin)] + [mapped.get(a, a) for a in cmd]
    server = Process(argv, tmp_path / "zramd.log", cwd=tmp_path)
    health = exec_form(runtime.one("HEALTHCHECK").split(" CMD ", 1)[1])
    assert health[0] == "bash"
    probe = [bash] + [h.replace("/7070", f"/{port}") for h in health[1:]]
    try:
        wait_until(lambda: healthy(port) or server.check_alive("zramd with the image's CMD"), 20, "zramd")
        assert subprocess.run(probe, timeout=10).returncode == 0, "HEALTHCHECK fails against a healthy zramd"
        assert (tmp_path / "data" / "zram0-backing.sqlite").exists()
    finally:
        assert server.stop() == 0
    assert subprocess.run(probe, timeout=10, stderr=subprocess.DEVNULL).returncode != 0, (
        "HEALTHCHECK passes with no server")
