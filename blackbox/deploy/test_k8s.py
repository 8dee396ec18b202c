"""deploy/k8s: every manifest passes kubernetes-validate --strict (the API's JSON schemas); the
StatefulSet's memory matches its --mem-limit, its probes, ports, mounts and Service agree, and
its container arguments start a working zramd."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import DEPLOY, Process, free_port, healthy, request, require_tool, wait_until

K8S = DEPLOY / "k8s"
MANIFESTS = sorted(K8S.glob("*.yaml"))


def quantity(text: str) -> int:
    """A Kubernetes memory quantity or a zramd size (binary suffixes) in bytes."""
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti|K|M|G|T)?", str(text))
    assert m, f"not a size: {text!r}"
    return int(m[1]) << {None: 0, "Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "K": 10, "M": 20, "G": 30, "T": 40}[m[2]]


def documents() -> dict[str, dict]:
    found = {}
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            found[doc["kind"]] = doc
    return found


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_manifest_validates(manifest: Path):
    validator = require_tool("kubernetes-validate", "the PyPI package kubernetes-validate (blackbox/deploy/requirements.txt)")
    result = subprocess.run([validator, "--strict", str(manifest)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "ERROR" not in result.stdout + result.stderr, result.stdout + result.stderr


def test_expected_kinds():
    assert MANIFESTS, "deploy/k8s has no manifests"
    assert {"StatefulSet", "Service", "PodDisruptionBudget"} <= set(documents())


def container_args(sts: dict) -> tuple[dict, list[str]]:
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    return container, [str(a) for a in container["args"]]


def flag(args: list[str], name: str) -> str:
    assert name in args, f"{name} missing from the container args"
    return args[args.index(name) + 1]


def test_statefulset_consistency():
    docs = documents()
    sts, svc = docs["StatefulSet"], docs["Service"]
    container, args = container_args(sts)
    pod = sts["spec"]["template"]

    # Memory: limit = mem_limit + slot table (16 B per page of disksize) + 256 MiB runtime; Guaranteed QoS.
    mem_limit, disksize = quantity(flag(args, "--mem-limit")), quantity(flag(args, "--disksize"))
    assert mem_limit > 0, "a pod without --mem-limit grows until the kubelet kills it"
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    assert quantity(limits["memory"]) >= mem_limit + disksize // 4096 * 16 + (256 << 20), limits
    assert quantity(limits["memory"]) <= mem_limit * 2, "the limit should track --mem-limit, not dwarf it"
    assert requests["memory"] == limits["memory"]

    # Probes on /healthz at the port zramd listens on.
    port = int(flag(args, "--listen").rsplit(":", 1)[1])
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/healthz", probe
        assert named.get(get["port"], get["port"]) == port, probe

    # The backing store's volume is the data dir, from a claim template; the token from a Secret.
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert mounts[claim["metadata"]["name"]] == flag(args, "--data-dir")
    assert quantity(claim["spec"]["resources"]["requests"]["storage"]) >= disksize * 46 // 40, (
        "the claim holds the whole disksize written back (~4.6 KiB per 4 KiB page)")
    token = flag(args, "--admin-token-file")
    assert any(token.startswith(path + "/") for path in mounts.values())

    # Non-root, read-only root filesystem, the image's uid.
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["readOnlyRootFilesystem"] is True

    # Prometheus scrape annotations point at /metrics on the same port.
    for annotations in (pod["metadata"]["annotations"], svc["metadata"]["annotations"]):
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == port
        assert annotations["prometheus.io/path"] == "/metrics"

    # The headless Service selects the pods and is the StatefulSet's serviceName.
    assert sts["spec"]["serviceName"] == svc["metadata"]["name"]
    assert svc["spec"]["clusterIP"] == "None"
    labels = pod["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    assert sts["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]
    (service_port,) = svc["spec"]["ports"]
    assert named.get(service_port["targetPort"], service_port["targetPort"]) == port


def test_container_args_start_zramd(zramd_bin: Path, tmp_path: Path):
    """The pod's arguments, with the listen address and paths mapped to the test's, serve with the
    limits they state."""
    _, args = container_args(documents()["StatefulSet"])
    port = free_port()
    token = tmp_path / "admin-token"
    token.write_text("k8s-token\n")
    mapped = {flag(args, "--listen"): f"127.0.0.1:{port}", flag(args, "--data-dir"): str(tmp_path / "data"),
              flag(args, "--admin-token-file"): str(token)}
    server = Process([str(zramd_bin)] + [mapped.get(a, a) for a in args], tmp_path / "zramd.log", cwd=tmp_path)
    try:
        wait_until(lambda: healthy(port) or server.check_alive("zramd with the pod's args"), 20, "zramd")
        assert int(request("GET", port, "/sys/block/zram0/mem_limit")[1]) == quantity(flag(args, "--mem-limit"))
        assert int(request("GET", port, "/sys/block/zram0/disksize")[1]) == quantity(flag(args, "--disksize"))
        assert request("PUT", port, "/sys/block/zram0/compact", b"1")[0] == 401
        assert request("PUT", port, "/sys/block/zram0/compact", b"1", {"Authorization": "Bearer k8s-token"})[0] == 204
    finally:
        assert server.stop() == 0
