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
        pos = offset if offset is not None else os.lseek(src, 0, os.SEEK_CUR)
        end = os.fstat(src).st_size if count is None else pos + count
        moved = 0
        while pos < end:
            try:
                n = os.sendfile(dst, src, pos, min(block, end - pos))
            except BlockingIOError:
                _wait(dst, select.POLLOUT, timeout)
                continue
            except InterruptedError:
                continue
            except OSError as exc:
                if exc.errno in (errno.EINVAL, errno.ENOSYS) and not moved:
                    return _fallback(src, dst, count, pos, timeout)
                raise
            if not n:
                break
            pos += n
            moved += n
        return moved
    if not (stat.S_ISFIFO(src_mode) or _is_pipe(dst)):
        return _fallback(src, dst, count, None, timeout)
    moved = 0
    while count is None or moved < count:
        want = block if count is None else min(block, count - moved)
        try:
            n = os.splice(src, dst, want)
        except BlockingIOError:
            _wait(src, select.POLLIN, timeout)
            _wait(dst, select.POLLOUT, timeout)
            continue
        except InterruptedError:
            continue
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ENOSYS) and not moved:
                return _fallback(src, dst, count, None, timeout)
            raise
        if not n:
            break
        moved += n
    return moved


def _fallback(src: int, dst: int, count: int | None, offset: int | None, timeout: float | None) -> int:
    if offset is not None:
        os.lseek(src, offset, os.SEEK_SET)
    return copy_hashed(src, dst, None, limit=count, timeout=timeout)[0]
