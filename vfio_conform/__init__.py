"""vfio-conform: conformance harness for the Linux VFIO device migration uAPI."""
import sys as _sys
from importlib.machinery import PathFinder as _PathFinder

from .base.build import __version__  # noqa: F401  (defined beside the build identity)
from .base.constants import CHECKOUT as _CHECKOUT, PACKAGE_DIR as _PACKAGE_DIR, TOP_LEVEL as _TOP_LEVEL


class _CheckoutFolders:
    """A source checkout keeps suites/, fixtures/ and profiles/ at its top level, where a wheel has
    them inside the package: this finder gives the checkout's folders the wheel's names
    (vfio_conform.suites, vfio_conform.fixtures), so the same imports work in both."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        package, _, name = fullname.rpartition(".")
        if package != __name__ or name not in _TOP_LEVEL:
            return None
        return _PathFinder.find_spec(fullname, [str(_CHECKOUT)])


if not (_PACKAGE_DIR / "suites").is_dir() and (_CHECKOUT / "suites" / "__init__.py").is_file():
    _sys.meta_path.insert(0, _CheckoutFolders)
