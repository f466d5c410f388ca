"""Copy loops on real file descriptors: what the data path costs when the device is a kernel fd.

`copy_hashed` reads into one reused buffer (no bytes object per chunk), updates the running digest
on a memoryview and writes the same view out; `copy_spliced` moves bytes the harness need not look
at with splice(2) (a pipe on either side) or sendfile(2) (a regular file as the source), which never
copies them into user space. Non-blocking fds wait in poll() for at most `timeout` seconds per wait.
"""
from __future__ import annotations

import errno
import os
import select
import stat
from typing import Any, Callable

DEFAULT_BUFFER = 1 << 20


def _wait(fd: int, events: int, timeout: float | None) -> None:
    poller = select.poll()
    poller.register(fd, events)
    if not poller.poll(None if timeout is None else int(timeout * 1000)):
        raise TimeoutError(errno.ETIMEDOUT, f"fd {fd} not ready within {timeout} s")


def write_all(fd: int, view: memoryview, timeout: float | None = None) -> None:
    """Write all of `view` to `fd` (short writes and EAGAIN handled)."""
    done, n = 0, len(view)
    while done < n:
        if timeout is not None:
            _wait(fd, select.POLLOUT, timeout)
        try:
            done += os.write(fd, view[done:] if done else view)
        except BlockingIOError:
            _wait(fd, select.POLLOUT, timeout)
        except InterruptedError:
            continue


def copy_hashed(src: int, dst: int | None, digest: Any = None, buffer: bytearray | None = None,
                limit: int | None = None, timeout: float | None = None,
                on_chunk: Callable[[memoryview], None] | None = None) -> tuple[int, int]:
    """Copy `src` to `dst` (or only read it, dst None) until end of stream or `limit` bytes,
    updating `digest` and calling `on_chunk` with each chunk's view; returns (bytes, reads).

    One loop, no call per chunk but the syscalls: with a `timeout`, one poll() per read on a poll
    object made once (a blocking data fd never hangs the harness); writes poll only on EAGAIN."""
    buf = buffer if buffer is not None else bytearray(DEFAULT_BUFFER)
    view = memoryview(buf)
    size = len(view)
    total = reads = 0
    readv, write = os.readv, os.write
    update = digest.update if digest is not None else None
    wait_ms = None if timeout is None else int(timeout * 1000)
    poller = None
    if timeout is not None:
        poller = select.poll()
        poller.register(src, select.POLLIN)
    while limit is None or total < limit:
        want = view if limit is None or limit - total >= size else view[:limit - total]
        if poller is not None and not poller.poll(wait_ms):
            raise TimeoutError(errno.ETIMEDOUT, f"fd {src} not readable within {timeout} s")
        try:
            n = readv(src, [want])
        except BlockingIOError:
            continue
        except InterruptedError:
            continue
        reads += 1
        if not n:
            break
        chunk = want[:n] if n < len(want) else want
        if update is not None:
            update(chunk)
        if on_chunk is not None:
            on_chunk(chunk)
        if dst is not None:
            try:
                done = write(dst, chunk)
            except (BlockingIOError, InterruptedError):
                done = 0
            if done < n:
                write_all(dst, chunk[done:], timeout)
        total += n
    return total, reads


def _is_pipe(fd: int) -> bool:
    return stat.S_ISFIFO(os.fstat(fd).st_mode)


def copy_spliced(src: int, dst: int, count: int | None = None, offset: int | None = None,
                 timeout: float | None = None, block: int = 1 << 20) -> int:
    """Move up to `count` bytes (None: to end of stream) from `src` to `dst` without looking at them:
    sendfile(2) from a regular file (at `offset`), splice(2) when either side is a pipe, else a
    hashed copy without a digest. Returns the bytes moved."""
    src_mode = os.fstat(src).st_mode
    if stat.S_ISREG(src_mode):
        start = offset if offset is not None else os.lseek(src, 0, os.SEEK_CUR)
        end = os.fstat(src).st_size if count is None else start + count
        return _move_all(lambda done, n: os.sendfile(dst, src, start + done, n), end - start, block,
                         ((dst, select.POLLOUT),), timeout,
                         lambda: _fallback(src, dst, count, start, timeout))
    if not (stat.S_ISFIFO(src_mode) or _is_pipe(dst)):
        return _fallback(src, dst, count, None, timeout)
    return _move_all(lambda done, n: os.splice(src, dst, n), count, block,
                     ((src, select.POLLIN), (dst, select.POLLOUT)), timeout,
                     lambda: _fallback(src, dst, count, None, timeout))


def _move_all(move: Callable[[int, int], int], total: int | None, block: int,
              waits: tuple[tuple[int, int], ...], timeout: float | None,
              fallback: Callable[[], int]) -> int:
    """The loop of sendfile and splice: `move(done, n)` moves at most n bytes (0 at end of stream)
    until `total` bytes moved (None: to end of stream); on EAGAIN it waits for each (fd, events) of
    `waits`, on EINTR it tries again, and EINVAL/ENOSYS before the first byte (the kernel cannot
    move between these fds) hands over to `fallback()`. Returns the bytes moved."""
    moved = 0
    while total is None or moved < total:
        try:
            n = move(moved, block if total is None else min(block, total - moved))
        except BlockingIOError:
            for fd, events in waits:
                _wait(fd, events, timeout)
            continue
        except InterruptedError:
            continue
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ENOSYS) and not moved:
                return fallback()
            raise
        if not n:
            break
        moved += n
    return moved


def _fallback(src: int, dst: int, count: int | None, offset: int | None, timeout: float | None) -> int:
    if offset is not None:
        os.lseek(src, offset, os.SEEK_SET)
    return copy_hashed(src, dst, None, limit=count, timeout=timeout)[0]
