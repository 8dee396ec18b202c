"""Protocol corner cases through libnbd (nbdsh's module) and a raw socket for what libnbd will not send."""

from __future__ import annotations

import errno
import random
import struct
import threading
import time

import nbd
import requests
import pytest

from conftest import PAGE, RawClient

SIZE = 512 << 20


def expect_errno(code: int, call, *args):
    with pytest.raises(nbd.Error) as caught:
        call(*args)
    # The server's answer, not libnbd's own check (strict mode is off where this is used).
    assert "command failed" in str(caught.value), caught.value
    assert caught.value.errno in (code, errno.errorcode[code]), caught.value


def test_unknown_option_is_unsupported_and_haggling_continues(server):
    c = RawClient(server.nbd_port)
    ((kind, message),) = c.option(99)
    assert kind == 0x80000001 and b"not supported" in message  # NBD_REP_ERR_UNSUP
    ((kind, _),) = c.option(5)  # STARTTLS: not offered
    assert kind == 0x80000001
    replies = c.option(3)  # LIST still works afterwards
    assert [r[0] for r in replies] == [2, 2, 1]
    assert c.option(8, b"x")[0][0] == 0x80000003  # STRUCTURED_REPLY with data: ERR_INVALID
    c.go("zram0")
    c.request(0, 0, PAGE, cookie=7)
    assert c.simple_reply() == (0, 7)
    assert c.exactly(PAGE) is not None
    c.close()


def test_bad_export_name_is_refused_and_the_server_carries_on(server):
    h = nbd.NBD()
    h.set_export_name("zram9")
    with pytest.raises(nbd.Error):
        h.connect_tcp("127.0.0.1", str(server.nbd_port))
    for bad in ("zram", "zram01", "../zram0", "zram-1"):
        c = RawClient(server.nbd_port)
        data = struct.pack(">I", len(bad)) + bad.encode() + struct.pack(">H", 0)
        assert c.option(7, data)[-1][0] == 0x80000006, bad  # NBD_REP_ERR_UNKNOWN
        c.close()
    # EXPORT_NAME with an unknown name can only be answered by closing.
    c = RawClient(server.nbd_port)
    c.sock.sendall(b"IHAVEOPT" + struct.pack(">II", 1, 5) + b"zram7")
    assert c.closed()
    server.handle().shutdown()


def test_reads_and_writes_past_the_end_are_einval_and_enospc(server):
    h = server.handle()
    h.set_strict_mode(0)
    expect_errno(errno.EINVAL, h.pread, PAGE, SIZE - 100)
    expect_errno(errno.ENOSPC, h.pwrite, b"x" * PAGE, SIZE - 100)
    expect_errno(errno.ENOSPC, h.trim, PAGE, SIZE)
    expect_errno(errno.ENOSPC, h.zero, PAGE, SIZE)
    assert h.pread(100, SIZE - 100) is not None  # the last bytes are fine
    h.shutdown()


def test_zero_length_requests_are_einval_and_the_connection_survives(server):
    h = server.handle()
    h.set_strict_mode(0)
    expect_errno(errno.EINVAL, h.pread, 0, 0)
    expect_errno(errno.EINVAL, h.pwrite, b"", 0)
    expect_errno(errno.EINVAL, h.trim, 0, 0)
    h.pwrite(b"a" * 10, 10)
    assert h.pread(10, 10) == b"a" * 10
    h.shutdown()


def test_trim_of_a_partial_page_keeps_its_bytes_and_a_whole_page_trim_frees_it(server):
    h = server.handle()
    h.set_strict_mode(0)  # unaligned on purpose: below the advertised 512-byte minimum
    data = random.Random(1).randbytes(3 * PAGE)
    base = 100 * PAGE
    h.pwrite(data, base)
    free_before = int(server.attr("io_stat").split()[3])
    h.trim(2 * PAGE, base + 1000)  # covers page 101 whole, cuts 100 and 102
    got = h.pread(3 * PAGE, base)
    assert got[:PAGE] == data[:PAGE] and got[2 * PAGE :] == data[2 * PAGE :]
    assert got[PAGE : 2 * PAGE] == bytes(PAGE)
    assert int(server.attr("io_stat").split()[3]) == free_before + 1  # notify_free
    h.shutdown()


def test_write_zeroes_is_allocation_free_and_block_status_reports_holes(server):
    h = server.handle("zram1")
    h.set_strict_mode(0)
    base = 4096 * PAGE
    h.pwrite(random.Random(2).randbytes(8 * PAGE), base)
    same_before = int(server.attr("mm_stat", 1).split()[5])
    h.zero(4 * PAGE, base + 2 * PAGE)
    assert int(server.attr("mm_stat", 1).split()[5]) == same_before + 4  # same_pages
    h.zero(1000, base + 100)  # inside one page: read-modify-write
    assert h.pread(1000, base + 100) == bytes(1000)
    extents = []
    h.block_status(8 * PAGE, base, lambda ctx, off, ents, err: extents.extend(zip(ents[::2], ents[1::2])) or 0)
    assert extents == [(2 * PAGE, 0), (4 * PAGE, 3), (2 * PAGE, 0)], extents
    one = []
    h.block_status(8 * PAGE, base + 3 * PAGE + 7, lambda ctx, off, ents, err: one.extend(ents) or 0, nbd.CMD_FLAG_REQ_ONE)
    assert one == [3 * PAGE - 7, 3]
    h.shutdown()


def test_block_status_needs_the_negotiated_context(server):
    h = nbd.NBD()
    h.set_request_structured_replies(False)
    h.connect_uri(server.uri())
    with pytest.raises(nbd.Error):
        h.block_status(PAGE, 0, lambda *a: 0)
    assert len(h.pread(PAGE, 0)) == PAGE  # simple replies work too
    h.shutdown()


def test_many_requests_in_flight_on_one_handle_complete_with_the_right_data(server):
    h = server.handle()
    rng = random.Random(3)
    pages = {i: rng.randbytes(PAGE) for i in rng.sample(range(20000, 30000), 512)}
    done = []
    for i, data in pages.items():
        done.append(h.aio_pwrite(data, i * PAGE))
        if len(done) % 64 == 0:
            while h.aio_in_flight() > 0:
                h.poll(-1)
    while h.aio_in_flight() > 0:
        h.poll(-1)
    for cookie in done:
        assert h.aio_command_completed(cookie)
    buffers = {i: nbd.Buffer(PAGE) for i in pages}
    cookies = {i: h.aio_pread(buffers[i], i * PAGE) for i in pages}
    assert h.aio_in_flight() > 32
    while h.aio_in_flight() > 0:
        h.poll(-1)
    for i, data in pages.items():
        assert h.aio_command_completed(cookies[i])
        assert buffers[i].to_bytearray() == data, i
    h.shutdown()


def test_several_connections_at_once_see_each_others_writes(server):
    errors = []

    def worker(n: int):
        try:
            h = server.handle()
            data = bytes([n]) * (64 * PAGE)
            for round_ in range(8):
                h.pwrite(data, (40000 + n * 64) * PAGE)
                h.flush()
            h.shutdown()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    h = server.handle()
    for n in range(8):
        assert h.pread(64 * PAGE, (40000 + n * 64) * PAGE) == bytes([n]) * (64 * PAGE)
    h.shutdown()


def test_bad_magic_closes_only_that_connection(server):
    survivor = server.handle()
    survivor.pwrite(b"s" * PAGE, 0)
    before = server.metric("zramd_nbd_protocol_violations_total")
    c = RawClient(server.nbd_port)
    c.go()
    c.request(0, 0, PAGE, magic=0xDEADBEEF)
    assert c.closed()
    assert server.metric("zramd_nbd_protocol_violations_total") == before + 1
    assert survivor.pread(PAGE, 0) == b"s" * PAGE
    survivor.shutdown()


def test_absurd_lengths_are_refused_before_allocating(server):
    c = RawClient(server.nbd_port)
    c.go()
    c.request(0, 0, 0xFFFFFFFF, cookie=3)  # READ of 4 GiB: EINVAL, connection lives
    assert c.simple_reply() == (errno.EINVAL, 3)
    c.request(1, 0, 0xFFFFFFF0, cookie=4)  # WRITE announcing 4 GiB: closed, nothing allocated
    assert c.closed()
    c = RawClient(server.nbd_port)
    c.sock.sendall(b"IHAVEOPT" + struct.pack(">II", 7, 0xFFFFFFFF))  # option data of 4 GiB
    assert c.closed()
    c = RawClient(server.nbd_port)
    c.sock.sendall(b"IHAVEOPS" + struct.pack(">II", 7, 0))  # bad option magic
    assert c.closed()
    h = server.handle()
    assert len(h.pread(PAGE, 0)) == PAGE
    h.shutdown()


def test_unknown_command_and_flags_are_einval(server):
    c = RawClient(server.nbd_port)
    c.go()
    c.request(42, 0, PAGE, cookie=9)
    assert c.simple_reply() == (errno.EINVAL, 9)
    c.sock.sendall(struct.pack(">IHHQQI", 0x25609513, 1 << 3, 0, 10, 0, PAGE))  # REQ_ONE on a READ
    assert c.simple_reply() == (errno.EINVAL, 10)
    c.sock.sendall(struct.pack(">IHHQQI", 0x25609513, 1, 0, 11, 0, 1 << 20))  # FUA on a 1 MiB READ (split path)
    assert c.simple_reply() == (errno.EINVAL, 11)
    c.request(2, 0, 0)  # DISC: the server closes after answering what is in flight
    assert c.closed()


def test_per_command_metrics_count_requests_bytes_and_errors(server):
    h = server.handle()
    h.set_strict_mode(0)
    reads, errors = server.metric("zramd_nbd_requests_total", command="read"), server.metric("zramd_nbd_errors_total", command="read")
    h.pread(3 * PAGE, 0)
    expect_errno(errno.EINVAL, h.pread, PAGE, SIZE)
    h.flush()
    assert server.metric("zramd_nbd_requests_total", command="read") == reads + 2
    assert server.metric("zramd_nbd_errors_total", command="read") == errors + 1
    assert server.metric("zramd_nbd_requests_total", command="flush") >= 1
    assert server.metric("zramd_nbd_connections") >= 1
    h.shutdown()


def test_a_device_removed_under_an_open_connection_answers_eio_and_nothing_else_breaks(server):
    new = requests.post(server.http("/sys/class/zram-control/hot_add"), timeout=10).text.strip()
    requests.put(server.http(f"/sys/block/zram{new}/disksize"), data="4M", timeout=10).raise_for_status()
    h = server.handle(f"zram{new}")
    h.pwrite(b"r" * PAGE, 0)
    requests.post(server.http("/sys/class/zram-control/hot_remove"), data=new, timeout=10).raise_for_status()
    with pytest.raises(nbd.Error) as caught:
        h.pread(PAGE, 0)
    assert caught.value.errno in (errno.EIO, "EIO"), caught.value
    h.shutdown()
    other = server.handle()
    assert len(other.pread(PAGE, 0)) == PAGE
    other.shutdown()


def test_sigterm_with_open_connections_exits_cleanly():
    from conftest import Server

    s = Server(disksize="64M", devices=1)
    h = s.handle()
    h.pwrite(b"t" * (1 << 20), 0)
    idle = RawClient(s.nbd_port)  # one still haggling
    buffers = [nbd.Buffer(1 << 20) for _ in range(8)]
    for b in buffers:
        h.aio_pread(b, 0)
    # The client never reads its 8 MiB of replies: the server gives it 5 s, then closes it.
    started = time.time()
    assert s.stop() == 0, s.output()
    assert time.time() - started < 15
    idle.close()
    del h


def test_random_garbage_in_either_phase_never_takes_the_server_down(server):
    rng = random.Random(77)
    for i in range(60):
        c = RawClient(server.nbd_port)
        if i % 2:
            c.go()
            # A valid request header now and then, so garbage also lands mid-payload.
            if i % 3 == 0:
                c.request(1, rng.randrange(0, SIZE), rng.randrange(1, 1 << 16), cookie=i)
        try:
            c.sock.sendall(rng.randbytes(rng.randrange(1, 4096)))
            c.sock.settimeout(0.2)
            while c.sock.recv(65536):
                pass
        except (OSError, EOFError):
            pass
        c.close()
    h = server.handle()
    h.pwrite(b"g" * PAGE, 7 * PAGE)
    assert h.pread(PAGE, 7 * PAGE) == b"g" * PAGE
    h.shutdown()
    assert server.alive()
