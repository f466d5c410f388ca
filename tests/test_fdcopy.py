"""device/fdcopy.copy_spliced: sendfile from a regular file (at an offset, a count or to its end),
splice from and to pipes, and the hashed copy where the kernel cannot move the bytes (neither side
a pipe, or EINVAL from sendfile/splice before the first byte, e.g. an O_APPEND destination)."""
from __future__ import annotations

import os
import threading

from vfio_conform.device.fdcopy import copy_spliced

DATA = bytes(range(256)) * 4099         # not a multiple of the block


def _file(tmp_path, name="src", data=DATA):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_sendfile_from_a_regular_file(tmp_path):
    src = os.open(_file(tmp_path), os.O_RDONLY)
    dst = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT)
    try:
        assert copy_spliced(src, dst, block=4096) == len(DATA)
        assert copy_spliced(src, dst, count=1000, offset=10, block=300) == 1000
    finally:
        os.close(src)
        os.close(dst)
    assert (tmp_path / "dst").read_bytes() == DATA + DATA[10:1010]


def test_sendfile_to_an_append_only_file_falls_back_to_a_copy(tmp_path):
    src = os.open(_file(tmp_path), os.O_RDONLY)
    dst = os.open(_file(tmp_path, "dst", b"head"), os.O_WRONLY | os.O_APPEND)
    try:
        assert copy_spliced(src, dst, count=5000, offset=7) == 5000
    finally:
        os.close(src)
        os.close(dst)
    assert (tmp_path / "dst").read_bytes() == b"head" + DATA[7:5007]


def test_splice_from_a_pipe_to_a_pipe_and_into_a_file(tmp_path):
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    got = bytearray()

    def feed():
        os.write(w1, DATA[:60000])
        os.close(w1)

    def drain():
        while chunk := os.read(r2, 65536):
            got.extend(chunk)

    threads = [threading.Thread(target=feed), threading.Thread(target=drain)]
    for t in threads:
        t.start()
    assert copy_spliced(r1, w2, block=4096) == 60000           # to end of stream
    os.close(w2)
    for t in threads:
        t.join(10)
    os.close(r1)
    os.close(r2)
    assert bytes(got) == DATA[:60000]
    r, w = os.pipe()
    os.write(w, DATA[:5000])
    dst = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT)
    assert copy_spliced(r, dst, count=3000, block=1000) == 3000
    os.close(dst)
    appended = os.open(_file(tmp_path, "app", b"x"), os.O_WRONLY | os.O_APPEND)
    assert copy_spliced(r, appended, count=2000) == 2000        # splice refuses O_APPEND: copied
    for fd in (r, w, appended):
        os.close(fd)
    assert (tmp_path / "out").read_bytes() == DATA[:3000]
    assert (tmp_path / "app").read_bytes() == b"x" + DATA[3000:5000]


def test_neither_side_a_pipe_nor_a_regular_source_is_a_copy(tmp_path):
    a, b = __import__("socket").socketpair()
    dst = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT)
    a.sendall(DATA[:9000])
    a.close()
    assert copy_spliced(b.fileno(), dst) == 9000
    b.close()
    os.close(dst)
    assert (tmp_path / "dst").read_bytes() == DATA[:9000]
