"""linux/vfio.h written as data: enums, ctypes structs and the ioctl table."""
from .enums import *  # noqa: F401,F403
from .structs import *  # noqa: F401,F403
from .ioctl import IOCTLS, Ioctl, ioctl_number  # noqa: F401
