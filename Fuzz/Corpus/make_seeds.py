#!/usr/bin/env python3
"""Writes the seed corpora of the ZramFuzz targets (Fuzz/Corpus/{attributes,router}/).

attributes: byte 0 = index of the attribute in sorted order, plus len(names) for the
initialised device; the rest is the body. Run again after adding an attribute.
"""
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = sorted("""disksize initstate reset comp_algorithm algorithm_params recomp_algorithm recompress idle
writeback writeback_limit writeback_limit_enable writeback_batch_size compressed_writeback backing_dev
mem_limit mem_used_max compact mm_stat io_stat bd_stat debug_stat""".split())

BODIES = {
    "disksize": ["1M", "4096", "16k\n", "4M", "0", "9223372036854775807", "8P", "18446744073709551616", "1G"],
    "reset": ["1", "0", "-1", "99999999999999999999"],
    "comp_algorithm": ["lz4", "zstd\n", "lz4hc", "deflate", "lzo", "nope", "x" * 130, "lz4\nzstd"],
    "algorithm_params": ["algo=zstd level=3", "priority=1 level=19", "algo=deflate deflate.winbits=9",
                         "algo=zstd dict=dict.bin", "dict=../../etc/passwd", "dict=/etc/passwd", "level=-2147483649",
                         "algo=lz4 level=65537", "algo=zstd priority=1", "level="],
    "recomp_algorithm": ["algo=zstd", "algo=lz4hc priority=3", "algo=zstd priority=4", "priority=1", "algo=zstd priority=1 priority=2"],
    "recompress": ["type=huge", "type=idle threshold=3000", "max_pages=1 algo=zstd", "priority=1", "type=huge_idle",
                   "threshold=1G", "algo=zstd priority=1", "max_pages=99999999999999999999"],
    "idle": ["all", "0", "60", "-1", "9223372036854775807"],
    "writeback": ["idle", "huge", "huge_idle", "incompressible", "type=huge page_index=1", "page_indexes=0-63",
                  "page_indexes=0-3 page_indexes=1-2 page_index=0", "page_indexes=5-3", "page_index=64",
                  "page_indexes=0-9223372036854775807", "page_indexes=0-63 " * 8],
    "writeback_limit": ["0", "100", "9223372036854775807"],
    "writeback_limit_enable": ["1", "0", "yes", "maybe"],
    "writeback_batch_size": ["1", "4096", "0", "4097"],
    "compressed_writeback": ["1", "0", "on"],
    "backing_dev": ["wb2.sqlite", "none", "../escape.sqlite", "/etc/passwd", "sub", "sub/x.sqlite", "", "a\0b"],
    "mem_limit": ["0", "64K", "1", "9223372036854775807", "8P"],
    "mem_used_max": ["0", "1"],
    "compact": ["1"],
}


def main():
    attrs = HERE / "attributes"
    attrs.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(NAMES):
        for device, offset in (("fresh", 0), ("live", len(NAMES))):
            for j, body in enumerate(BODIES.get(name, ["1"])):
                (attrs / f"{name}-{device}-{j}").write_bytes(bytes([i + offset]) + body.encode())
    router = HERE / "router"
    router.mkdir(parents=True, exist_ok=True)
    targets = ["/dev/zram0/pages/0", "/dev/zram12/pages/4095", "/dev/zram0/pages/007", "/dev/zram0/pages/-1",
               "/dev/zram0/pages/9223372036854775807", "/dev/zram0/pages/9223372036854775808",
               "/dev/zram0/pages?from=0&count=4", "/dev/zram0/pages?from=1&from=2", "/dev/zram0/pages?from=%30&count=+1",
               "/sys/block/zram0/disksize", "/sys/block/zram01/mm_stat", "/sys/block", "/sys/class/zram-control/hot_add",
               "/sys/kernel/debug/zram/zram0/block_state", "/sys/kernel/debug/zsmalloc/zram0/classes",
               "/dev/zram0/pages/1/", "//dev//zram0/pages/1", "/dev/zram/pages/1", "/metrics", "/healthz?x=%zz&=&&a=b=c",
               "/dev/zram0/pages?from=0&count=1&extra=%E2%82%AC"]
    for j, target in enumerate(targets):
        (router / f"seed-{j}").write_bytes(target.encode())


if __name__ == "__main__":
    main()
