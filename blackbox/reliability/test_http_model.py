"""Model-based concurrency over real HTTP.

Client threads PUT, GET, DELETE and batch-PUT/GET pages on a few overlapping slots while another
thread marks pages idle, recompresses, writes back (by type and by index) and compacts. Every
write stores a page that names it (a tag in its first 8 bytes, or the tag repeated: a same-filled
page), so each read says which write it saw.

The oracle (per slot, linearizability of a register, checked loosely): a read may return the
value of write W when W started before the read ended and no write W2 that succeeded began after
W ended and ended before the read began (W2 would have overwritten W for good). The empty slot is
the value of a write that ended before everything (and of every DELETE). Failed writes may or may
not have taken effect, so they may be seen but never hide another. A read that returns anything
else is a mismatch.

ZRAMD_MODEL_CLIENTS / _OPS / _SLOTS size it (defaults: 8 clients x 2,000 operations on 48 slots).
"""

from __future__ import annotations

import bisect
import os
import random
import struct
import threading
import time
from collections import defaultdict

import pytest
import requests

from conftest import PAGE

CLIENTS = int(os.environ.get("ZRAMD_MODEL_CLIENTS", "8"))
OPS = int(os.environ.get("ZRAMD_MODEL_OPS", "2000"))
SLOTS = int(os.environ.get("ZRAMD_MODEL_SLOTS", "48"))
EMPTY = 0  # the tag of "nothing stored"


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.writes = defaultdict(list)  # slot -> [(start, end, tag, succeeded)]
        self.reads = defaultdict(list)   # slot -> [(start, end, tag, op)]
        self.errors: list[str] = []
        self.counts = defaultdict(int)

    def write(self, slot, start, end, tag, ok):
        with self.lock:
            self.writes[slot].append((start, end, tag, ok))

    def read(self, slot, start, end, tag, op):
        with self.lock:
            self.reads[slot].append((start, end, tag, op))

    def error(self, text):
        with self.lock:
            self.errors.append(text)


def make_page(tag: int, base: bytes, kind: int) -> bytes:
    word = struct.pack("<Q", tag)
    if kind == 0:
        return word * (PAGE // 8)  # same-filled
    return word + base[8:]


def tag_of(page: bytes) -> int:
    return struct.unpack("<Q", page[:8])[0] if page != bytes(PAGE) else EMPTY


def check(rec: Recorder) -> tuple[int, int, list[str]]:
    mismatches, reads = 0, 0
    examples = []
    for slot, slot_reads in rec.reads.items():
        writes = [(float("-inf"), float("-inf"), EMPTY, True)] + rec.writes.get(slot, [])
        # When is each write overwritten for good? At the earliest end of a successful write that
        # began after it ended: successful writes sorted by start, with the minimum end of every suffix.
        done = sorted((w[0], w[1]) for w in writes if w[3])
        starts = [w[0] for w in done]
        suffix_min = [float("inf")] * (len(done) + 1)
        for i in range(len(done) - 1, -1, -1):
            suffix_min[i] = min(done[i][1], suffix_min[i + 1])
        by_tag = defaultdict(list)
        for (start, end, tag, _) in writes:
            by_tag[tag].append((start, suffix_min[bisect.bisect_right(starts, end)]))
        for (rs, re_, tag, op) in slot_reads:
            reads += 1
            if not any(start < re_ and superseded >= rs for start, superseded in by_tag.get(tag, ())):
                mismatches += 1
                if len(examples) < 10:
                    allowed = sorted(t for t, ws in by_tag.items() if any(st < re_ and sup >= rs for st, sup in ws))
                    examples.append(f"slot {slot}: {op} read tag {tag:#x} in [{rs:.6f}, {re_:.6f}], allowed {allowed}")
    return mismatches, reads, examples


def client(base: str, worker: int, corpus_pages: list[bytes], rec: Recorder, seed: int):
    rng = random.Random(seed)
    s = requests.Session()
    counter = 0

    def new_tag():
        nonlocal counter
        counter += 1
        return (worker + 1) << 40 | counter

    for _ in range(OPS):
        slot = rng.randrange(SLOTS)
        op = rng.random()
        try:
            if op < 0.35:  # PUT one page
                tag = new_tag()
                page = make_page(tag, rng.choice(corpus_pages), rng.randrange(4))
                t0 = time.monotonic()
                r = s.put(f"{base}/dev/zram0/pages/{slot}", data=page, timeout=60)
                t1 = time.monotonic()
                rec.write(slot, t0, t1, tag, r.status_code == 204)
                rec.counts["put"] += 1
                if r.status_code != 204:
                    rec.error(f"PUT {slot}: {r.status_code} {r.text}")
            elif op < 0.65:  # GET one page
                t0 = time.monotonic()
                r = s.get(f"{base}/dev/zram0/pages/{slot}", timeout=60)
                t1 = time.monotonic()
                rec.counts["get"] += 1
                if r.status_code == 200 and len(r.content) == PAGE:
                    rec.read(slot, t0, t1, tag_of(r.content), "GET")
                elif r.status_code == 404:
                    rec.read(slot, t0, t1, EMPTY, "GET")
                else:
                    rec.error(f"GET {slot}: {r.status_code} {r.text[:200]}")
            elif op < 0.75:  # DELETE
                t0 = time.monotonic()
                r = s.delete(f"{base}/dev/zram0/pages/{slot}", timeout=60)
                t1 = time.monotonic()
                rec.write(slot, t0, t1, EMPTY, r.status_code == 204)
                rec.counts["delete"] += 1
                if r.status_code != 204:
                    rec.error(f"DELETE {slot}: {r.status_code} {r.text}")
            elif op < 0.87:  # batch PUT
                k = rng.randint(1, 4)
                first = min(slot, SLOTS - k)
                tags = [new_tag() for _ in range(k)]
                body = b"".join(make_page(t, rng.choice(corpus_pages), rng.randrange(4)) for t in tags)
                t0 = time.monotonic()
                r = s.put(f"{base}/dev/zram0/pages?from={first}", data=body, timeout=60)
                t1 = time.monotonic()
                rec.counts["batch_put"] += 1
                for i, t in enumerate(tags):
                    rec.write(first + i, t0, t1, t, r.status_code == 204)
                if r.status_code != 204:
                    rec.error(f"batch PUT {first}+{k}: {r.status_code} {r.text}")
            else:  # batch GET
                k = rng.randint(1, 4)
                first = min(slot, SLOTS - k)
                t0 = time.monotonic()
                r = s.get(f"{base}/dev/zram0/pages?from={first}&count={k}", timeout=60)
                t1 = time.monotonic()
                rec.counts["batch_get"] += 1
                if r.status_code == 200 and len(r.content) == k * PAGE:
                    for i in range(k):
                        rec.read(first + i, t0, t1, tag_of(r.content[i * PAGE:(i + 1) * PAGE]), "batch GET")
                else:
                    rec.error(f"batch GET {first}+{k}: {r.status_code} {r.text[:200]}")
        except requests.RequestException as e:
            rec.error(f"request failed: {e!r}")
    s.close()


MAINTENANCE = [("idle", "all"), ("recompress", "type=idle max_pages=16"), ("writeback", "idle"),
               ("recompress", "type=huge"), ("writeback", "huge"), ("compact", "1"), ("idle", "0"),
               ("writeback", "page_indexes=0-15 page_index=20"), ("writeback", "incompressible"),
               ("recompress", "")]


def maintenance(base: str, stop: threading.Event, rec: Recorder, seed: int):
    rng = random.Random(seed)
    s = requests.Session()
    while not stop.is_set():
        attr, body = rng.choice(MAINTENANCE)
        if attr == "writeback" and body.startswith("page_indexes"):
            lo = rng.randrange(SLOTS)
            body = f"page_indexes={lo}-{min(SLOTS - 1, lo + rng.randrange(8))} page_index={rng.randrange(SLOTS)}"
        try:
            r = s.put(f"{base}/sys/block/zram0/{attr}", data=body, timeout=120)
            rec.counts[f"{attr}"] += 1
            if r.status_code != 204:
                rec.error(f"{attr} {body!r}: {r.status_code} {r.text}")
        except requests.RequestException as e:
            rec.error(f"{attr} failed: {e!r}")
        stop.wait(rng.random() * 0.02)
    s.close()


@pytest.mark.parametrize("tiering", [False, True], ids=["zram", "tiering"])
def test_concurrent_clients_agree_with_the_model(zramd_factory, corpus, tiering):
    """With `tiering`, a mem_limit far below the data, automatic writeback and promotion run
    underneath (issue 12): writes at the limit go to the store, pages move both ways."""
    server = zramd_factory("--disksize", "0", "--workers", "4")
    settings = [("backing_dev", "model.sqlite"), ("recomp_algorithm", "algo=zstd priority=1"),
                ("recomp_algorithm", "algo=deflate priority=2"), ("writeback_batch_size", "4"), ("disksize", "1M")]
    if tiering:
        settings += [("mem_limit", "64K"), ("auto_writeback", "enable=1 high_watermark=90 low_watermark=50"),
                     ("promotion", "enable=1 window=30")]
    for attr, body in settings:
        r = server.put_attr("zram0", attr, body)
        assert r.status_code == 204, (attr, r.text)
    pages = corpus.compressible(16) + corpus.incompressible_ish(8) + corpus.huge(8)
    rec = Recorder()
    stop = threading.Event()
    t_start = time.monotonic()
    keeper = threading.Thread(target=maintenance, args=(server.base, stop, rec, 99))
    keeper.start()
    workers = [threading.Thread(target=client, args=(server.base, w, pages, rec, 1000 + w)) for w in range(CLIENTS)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(600)
    stop.set()
    keeper.join(120)
    assert not any(t.is_alive() for t in workers) and not keeper.is_alive(), "a client hung"
    # A final quiet read of every slot, checked like the others.
    s = requests.Session()
    for slot in range(SLOTS):
        t0 = time.monotonic()
        r = s.get(f"{server.base}/dev/zram0/pages/{slot}", timeout=60)
        rec.read(slot, t0, time.monotonic(), tag_of(r.content) if r.status_code == 200 else EMPTY, "final GET")
    mismatches, reads, examples = check(rec)
    bd = server.stat("zram0", "bd_stat")
    debug = server.stat("zram0", "debug_stat")
    io = server.stat("zram0", "io_stat")
    elapsed = time.monotonic() - t_start
    print(f"\nhttp model: {CLIENTS} clients, {sum(v for k, v in rec.counts.items())} requests "
          f"({dict(rec.counts)}), {reads} reads checked, {mismatches} mismatches, {len(rec.errors)} errors, "
          f"bd_stat {bd}, debug_stat {debug}, io_stat {io}, {elapsed:.1f} s")
    assert not rec.errors, "\n".join(rec.errors[:20])
    assert mismatches == 0, "\n".join(examples)
    assert reads > CLIENTS * OPS // 4
    assert rec.counts["writeback"] > 0 and rec.counts["recompress"] > 0 and rec.counts["compact"] > 0
    assert bd[2] > 0, "pages were written back during the run"
    assert io[0] == 0 and io[1] == 0, "no failed reads or writes"
    if tiering:
        tier = server.stat("zram0", "tier_stat")
        print(f"tier_stat {tier}")
        assert tier[0] + tier[2] > 0, "pages went to the store on their own"


def test_the_oracle_flags_stale_and_invented_reads():
    rec = Recorder()
    rec.write(0, 1.0, 2.0, 11, True)
    rec.write(0, 3.0, 4.0, 12, True)
    rec.write(0, 3.5, 9.0, 13, False)  # failed: may be seen, hides nothing
    rec.read(0, 0.5, 1.5, EMPTY, "before or during the first write")   # ok
    rec.read(0, 0.5, 1.5, 11, "during the first write")                # ok
    rec.read(0, 2.5, 3.5, 11, "between the writes")                   # ok
    rec.read(0, 3.2, 5.0, 11, "overlapping the second write")         # ok
    rec.read(0, 5.0, 6.0, 13, "a failed write may have landed")        # ok
    assert check(rec)[:2] == (0, 5)
    rec.read(0, 5.0, 6.0, 11, "after the second write ended: stale")
    rec.read(0, 2.5, 2.8, EMPTY, "after the first write ended: stale")
    rec.read(0, 2.5, 2.8, 99, "never written")
    rec.read(1, 0.0, 1.0, 11, "written to another slot")
    assert check(rec)[:2] == (4, 9)
