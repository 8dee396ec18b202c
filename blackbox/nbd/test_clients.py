"""Real NBD clients against zramd: nbdinfo, nbdcopy, qemu-io, qemu-img."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import requests

from conftest import PAGE


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"{args[0]} failed ({result.returncode}): {result.stderr or result.stdout}")
    return result


def test_nbdinfo_json_shows_size_flags_and_block_sizes(server):
    info = json.loads(run("nbdinfo", "--json", server.uri("zram1")).stdout)
    assert info["protocol"] == "newstyle-fixed" and info["structured"] is True
    (export,) = info["exports"]
    assert export["export-name"] == "zram1"
    assert export["export-size"] == 512 << 20
    for flag in ("can_flush", "can_fua", "can_trim", "can_zero", "can_multi_conn"):
        assert export[flag] is True, flag
    assert export["is_read_only"] is False
    assert (export["block_size_minimum"], export["block_size_preferred"], export["block_size_maximum"]) == (512, PAGE, 32 << 20)
    assert "base:allocation" in export["contexts"]


def test_nbdinfo_list_follows_hot_add_and_hot_remove(server):
    names = lambda: [e["export-name"] for e in json.loads(run("nbdinfo", "--list", "--json", server.uri("")).stdout)["exports"]]
    assert names() == ["zram0", "zram1"]
    new = requests.post(server.http("/sys/class/zram-control/hot_add"), timeout=10).text.strip()
    try:
        # Uninitialised: not an export until disksize is written.
        assert names() == ["zram0", "zram1"]
        assert run("nbdinfo", server.uri(f"zram{new}"), check=False).returncode != 0
        requests.put(server.http(f"/sys/block/zram{new}/disksize"), data="8M", timeout=10).raise_for_status()
        assert names() == ["zram0", "zram1", f"zram{new}"]
        assert json.loads(run("nbdinfo", "--json", server.uri(f"zram{new}")).stdout)["exports"][0]["export-size"] == 8 << 20
    finally:
        requests.post(server.http("/sys/class/zram-control/hot_remove"), data=new, timeout=10).raise_for_status()
    assert names() == ["zram0", "zram1"]


def test_nbdcopy_256_mib_of_corpus_pages_round_trips_and_http_reads_the_same_pages(server, corpus, tmp_path):
    pages = len(corpus) // PAGE
    # 256 MiB of corpus pages; each pass starts at a different page so repeats do not line up.
    total = (256 << 20) // PAGE
    source = tmp_path / "in.bin"
    with open(source, "wb") as f:
        written, shift = 0, 0
        while written < total:
            n = min(pages - shift, total - written)
            f.write(corpus[shift * PAGE : (shift + n) * PAGE])
            written += n
            shift = (shift + 997) % pages if written % pages == 0 or n < pages - shift else 0
    assert source.stat().st_size == 256 << 20
    run("nbdcopy", "--flush", str(source), server.uri("zram0"))
    back = tmp_path / "out.bin"
    run("nbdcopy", server.uri("zram0"), str(back))
    assert back.stat().st_size == 512 << 20
    run("cmp", "-n", str(256 << 20), str(source), str(back))
    data = source.read_bytes()
    for index in random.Random(13).sample(range(total), 64) + [0, total - 1]:
        r = requests.get(server.http(f"/dev/zram0/pages/{index}"), timeout=10)
        expected = data[index * PAGE : (index + 1) * PAGE]
        if r.status_code == 404:  # zero pages nbdcopy skipped: the slot is empty
            assert expected == bytes(PAGE), index
        else:
            assert r.content == expected, index
    mm = [int(x) for x in server.attr("mm_stat").split()]
    assert mm[0] >= (256 << 20) * 0.9 and mm[1] < mm[0] / 2, mm  # stored, and compressed
    assert server.metric("zramd_nbd_requests_total", command="write") > 0
    # nbdcopy asks BLOCK_STATUS first and reads only the data: the empty half is never read.
    assert server.metric("zramd_nbd_requests_total", command="block_status") > 0
    assert 256 << 20 <= server.metric("zramd_nbd_bytes_total", command="read") < 400 << 20


QEMU_SCRIPT = [
    # 512-byte sectors straddling page boundaries, odd lengths, overwrites.
    ("write -P 0x11 3584 1024", None),
    ("write -P 0x22 4095 2", None),
    ("write -P 0x33 7680 9216", None),
    ("write -P 0x44 20000 333", None),
    ("write -z 8000 5000", None),
    ("discard 32768 16384", None),
    ("write -P 0x55 36864 512", None),
]


def apply_model(model: bytearray, command: str) -> None:
    parts = command.split()
    if parts[0] == "write" and parts[1] == "-P":
        value, offset, length = int(parts[2], 16), int(parts[3]), int(parts[4])
        model[offset : offset + length] = bytes([value]) * length
    elif parts[0] == "write" and parts[1] == "-z":
        offset, length = int(parts[2]), int(parts[3])
        model[offset : offset + length] = bytes(length)
    elif parts[0] == "discard":
        offset, length = int(parts[1]), int(parts[2])
        model[offset : offset + length] = bytes(length)  # whole pages only here: they read as zeros after


def test_qemu_io_unaligned_writes_zeroes_and_discards_match_a_model(server):
    h = server.handle("zram1")
    base = bytes(random.Random(5).randbytes(64 << 10))
    h.pwrite(base, 0)
    model = bytearray(base)
    args = ["qemu-io", "-f", "raw", server.uri("zram1")]
    for command, _ in QEMU_SCRIPT:
        args += ["-c", command]
        apply_model(model, command)
    args += ["-c", "read -P 0x33 7680 320", "-c", "read -P 0 8000 5000", "-c", "read -P 0x44 20000 333"]
    out = run(*args).stdout
    assert "Pattern verification failed" not in out, out
    assert h.pread(64 << 10, 0) == bytes(model)
    h.shutdown()


def test_qemu_img_convert_and_compare(server, corpus, tmp_path):
    image = tmp_path / "img.raw"
    image.write_bytes(corpus[: 16 << 20] + bytes(4 << 20) + corpus[-(12 << 20):])
    with open(image, "r+b") as f:
        f.truncate(512 << 20)
    run("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", str(image), server.uri("zram1"))
    run("qemu-img", "compare", "-f", "raw", "-F", "raw", str(image), server.uri("zram1"))
    # And the other way: one changed byte is a difference.
    with open(image, "r+b") as f:
        f.seek(5 << 20)
        old = f.read(1)[0]
        f.seek(5 << 20)
        f.write(bytes([old ^ 0xFF]))
    assert run("qemu-img", "compare", "-f", "raw", "-F", "raw", str(image), server.uri("zram1"), check=False).returncode == 1
