"""The one `try_x()`/`x()` body pair of the device interface: errno_of and checked."""
import errno

import pytest

from vfio_conform.device import checked, errno_of
from vfio_conform.base.errors import UapiError


def fail(code):
    def call(*args):
        raise OSError(code, "boom")
    return call


def test_errno_of_returns_the_value_or_the_errno_and_the_failed_value():
    assert errno_of(lambda a, b: a + b, 1, 2) == (0, 3)
    assert errno_of(fail(errno.EBADF), 1, failed=b"") == (errno.EBADF, b"")
    assert errno_of(fail(None)) == (errno.EIO, None)          # an OSError without errno is EIO


def test_checked_raises_uapi_error_naming_operation_errno_and_device():
    assert checked((0, b"x"), "read(data_fd, 1)", "sim0") == b"x"
    with pytest.raises(UapiError) as exc:
        checked((errno.ENOTTY, None), "VFIO_DEVICE_RESET", "sim0")
    assert exc.value.errno == errno.ENOTTY and str(exc.value) == "VFIO_DEVICE_RESET: ENOTTY on sim0"
