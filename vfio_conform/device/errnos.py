"""The one body of every `try_x()` (errno_of) and `x()` (checked)."""
from __future__ import annotations

import errno
from typing import Any, Callable, TypeVar, cast, overload

from ..base.errors import UapiError
from .lastop import LAST_OPERATION

T = TypeVar("T")
F = TypeVar("F")


@overload
def errno_of(call: Callable[..., T], *args: Any) -> tuple[int, T | None]: ...
@overload
def errno_of(call: Callable[..., T], *args: Any, failed: F) -> tuple[int, T | F]: ...


def errno_of(call: Callable[..., T], *args: Any, failed: Any = None) -> tuple[int, Any]:
    """(0, call(*args)), or (its errno, `failed`) if it raised OSError: the body of every `try_x()`."""
    try:
        value = call(*args)
    except OSError as exc:
        code = exc.errno or errno.EIO
        LAST_OPERATION.returned(code)
        return code, failed
    LAST_OPERATION.returned()       # not on a timeout (a BaseException): that one never returned
    return 0, value


def checked(result: tuple[int, T | None], operation: str, device: str) -> T:
    """The value of a `try_x()` result, or UapiError(errno, operation): the body of every `x()`."""
    code, value = result
    if code:
        raise UapiError(code, operation, device)
    return cast(T, value)           # errno 0: the value is the call's own result
