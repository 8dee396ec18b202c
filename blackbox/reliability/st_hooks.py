"""Schemathesis hooks for fuzz_api.py (loaded through SCHEMATHESIS_HOOKS=st_hooks).

The fuzzer may remove or reset the devices it works on (hot_remove, reset, disksize): after
such a call the hook puts zram0 and zram1 back, initialised, so that the following cases reach
the page and attribute code instead of answering 404 for a device that is gone.
"""

import os
import random

import requests
import schemathesis

URL = os.environ["ZRAMD_URL"]
DEVICES = 2
_restores = 0


def restore() -> None:
    """zram0..zram{DEVICES-1} exist and are initialised (16 MiB, with a backing store)."""
    global _restores
    names = requests.get(URL + "/sys/block", timeout=30).json()
    for _ in range(DEVICES + 64):
        if all(f"zram{i}" in names for i in range(DEVICES)):
            break
        # hot_add takes the lowest free id, so this refills the holes.
        requests.post(URL + "/sys/class/zram-control/hot_add", timeout=30)
        names = requests.get(URL + "/sys/block", timeout=30).json()
    for i in range(DEVICES):
        if requests.get(f"{URL}/sys/block/zram{i}/initstate", timeout=30).text.strip() != "1":
            requests.put(f"{URL}/sys/block/zram{i}/backing_dev", data=f"zram{i}-fuzz.sqlite", timeout=30)
            requests.put(f"{URL}/sys/block/zram{i}/disksize", data="16M", timeout=30)
            _restores += 1


@schemathesis.hook
def after_call(ctx, case, response):
    path = case.formatted_path if hasattr(case, "formatted_path") else case.path
    if (case.method.upper() in ("PUT", "POST") and ("hot_remove" in path or path.endswith(("/reset", "/disksize")))) \
            or response.status_code == 404 and b"ENODEV" in (response.content or b""):
        restore()


# A request with more than 64 query items is refused 400 before routing (issue 11: a few hundred
# once hung the connection; blackbox/reliability/test_abuse.py and test_hostile.py pin that). So
# that the fuzzer's cases reach the operations rather than that limit, it repeats a query
# parameter at most MAX_REPEATS times.
MAX_REPEATS = 16
capped = 0


@schemathesis.hook
def map_query(ctx, query):
    global capped
    if query:
        for key, value in list(query.items()):
            if isinstance(value, list) and len(value) > MAX_REPEATS:
                query[key] = value[:MAX_REPEATS]
                capped += 1
    return query


# Realistic values, most of the time: small slot numbers on the devices that exist (so PUT, GET,
# HEAD and DELETE meet on the same slots and the stateful links reach stored pages) and bodies of
# whole pages. Only values that are already valid are changed, so negative cases stay negative.
PAGE = 4096
_rng = random.Random(int(os.environ.get("ZRAMD_FUZZ_SEED", "1")))


@schemathesis.hook
def map_path_parameters(ctx, path_parameters):
    if path_parameters:
        for key, modulus in (("id", DEVICES), ("index", 64)):
            value = path_parameters.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0 and _rng.random() < 0.8:
                path_parameters[key] = value % modulus
    return path_parameters


@schemathesis.hook
def map_body(ctx, body):
    operation = getattr(ctx, "operation", None)
    op_id = getattr(operation, "definition", None)
    op_id = (op_id.raw if hasattr(op_id, "raw") else op_id or {}).get("operationId") if op_id is not None else None
    if op_id in ("putPage", "putPages") and isinstance(body, (bytes, str)) and _rng.random() < 0.7:
        seed = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
        pages = 1 if op_id == "putPage" else _rng.randint(1, 4)
        kind = _rng.random()
        if kind < 0.3:
            return bytes([_rng.randrange(256)]) * (PAGE * pages)  # same-filled
        if kind < 0.6:
            return bytes(_rng.randrange(256) for _ in range(PAGE * pages))  # huge
        unit = (seed or b"zram") + b" compressible "
        return (unit * (PAGE * pages // len(unit) + 1))[: PAGE * pages]
    return body
