"""Every file in deploy/ is exercised by a test in blackbox/deploy: a new file without a test fails here."""

from __future__ import annotations

from conftest import DEPLOY, REPO

# Files picked up by a glob in a test rather than by name.
GLOBBED = {"k8s": "*.yaml", "prometheus/tests": "*.yml"}


def test_every_deploy_file_is_tested():
    sources = "".join(p.read_text() for p in (REPO / "blackbox" / "deploy").glob("test_*.py") if p.name != "test_inventory.py")
    files = sorted(p.relative_to(DEPLOY) for p in DEPLOY.rglob("*") if p.is_file())
    assert files
    untested = [str(f) for f in files
                if f.name not in sources and not (str(f.parent) in GLOBBED and f.match(GLOBBED[str(f.parent)]))]
    assert not untested, f"deploy/ files no test exercises: {untested}"
