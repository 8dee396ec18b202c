"""api/openapi.yaml is a valid OpenAPI 3.1 document and covers every route zramd serves."""

from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

from conftest import REPO

ROUTES = {
    "/dev/zram{id}/pages/{index}": {"get", "put", "head", "delete"},
    "/dev/zram{id}/pages": {"get", "put", "head"},
    "/sys/block": {"get", "head"},
    "/sys/block/zram{id}": {"get", "head"},
    "/sys/block/zram{id}/{attr}": {"get", "put", "post", "head"},
    "/sys/class/zram-control/hot_add": {"post"},
    "/sys/class/zram-control/hot_remove": {"post", "put"},
    "/sys/kernel/debug/zsmalloc/zram{id}/classes": {"get", "head"},
    "/sys/kernel/debug/zram/zram{id}/block_state": {"get", "head"},
    "/metrics": {"get", "head"},
    "/healthz": {"get", "head"},
    "/jobs": {"get", "head"},
    "/jobs/{job}": {"get", "head", "delete"},
    "/ui": {"get", "head"},
}
ATTRIBUTES = {"disksize", "initstate", "reset", "comp_algorithm", "algorithm_params", "recomp_algorithm", "recompress",
              "idle", "writeback", "writeback_limit", "writeback_limit_enable", "writeback_batch_size",
              "compressed_writeback", "backing_dev", "mem_limit", "mem_used_max", "compact", "mm_stat", "io_stat",
              "bd_stat", "debug_stat", "auto_writeback", "promotion", "eviction", "tier_stat"}


def test_spec_is_valid_openapi_3_1():
    spec, _ = read_from_filename(str(REPO / "api" / "openapi.yaml"))
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_spec_covers_every_route(contract):
    paths = contract.spec["paths"]
    for path, methods in ROUTES.items():
        assert path in paths, path
        listed = {m for m in paths[path] if m in ("get", "put", "post", "head", "delete", "patch", "options")}
        # Exactly the operations that exist: a refused method is prose (405 with Allow), not an operation.
        assert listed == methods, (path, listed ^ methods)
    attr = next(p for p in paths["/sys/block/zram{id}/{attr}"]["parameters"] if p.get("name") == "attr")
    assert set(attr["schema"]["enum"]) == ATTRIBUTES
    for name in ATTRIBUTES:
        assert f"`{name}`" in attr["description"], name
    schemes = contract.spec["components"]["securitySchemes"]
    assert schemes["adminToken"]["scheme"] == "bearer" and schemes["dataToken"]["scheme"] == "bearer"
    statuses = {s for item in paths.values() for op in item.values() if isinstance(op, dict)
                for s in op.get("responses", {})}
    assert {"200", "204", "400", "401", "404", "405", "409", "413", "503", "507"} <= statuses
