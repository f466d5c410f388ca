"""One device interface over any backend: every VFIO operation encoded with the uAPI structs.

Two names per operation (kernel selftest style): `x()` raises UapiError on any errno,
`try_x()` returns the errno so negative checks can compare it with the spec.
"""
from .core import Device, _FEATURE  # noqa: F401
from .datafd import DataFd, SetResult  # noqa: F401
from .errnos import F, T, checked, errno_of  # noqa: F401
from .lastop import LAST_OPERATION, _LastOperation, last_operation  # noqa: F401
from .records import (CapHeader, DATA_FD_SENTINEL, DeviceInfo, IrqInfo, PRECOPY_INFO_REINIT,
                      PRECOPY_INFO_V2, PrecopyInfo, RegionInfo, StreamDigest, _MAX_CAP_CHAIN,
                      _decode_region, _feature_name)  # noqa: F401
