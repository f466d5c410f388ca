"""Names and default places every layer shares, defined once: env variables, paths, default profiles.

The bottom layer of the package: it imports nothing of vfio_conform.
"""
from __future__ import annotations

from pathlib import Path

#: The installed package (a checkout's vfio_conform/ or site-packages/vfio_conform/).
PACKAGE_DIR = Path(__file__).resolve().parent.parent
#: The project checkout the package sits in (only meaningful for a source checkout).
CHECKOUT = PACKAGE_DIR.parent
#: The folders a checkout keeps at its top level and a wheel maps into the package (pyproject.toml's
#: package-dir): `suites/` is vfio_conform.suites, `fixtures/` vfio_conform.fixtures, `profiles/`
#: vfio_conform/profiles. vfio_conform/__init__.py gives a checkout's folders the wheel's names.
TOP_LEVEL = ("suites", "fixtures", "profiles")


def shipped(name: str) -> Path:
    """Where the top-level folder `name` is: inside the package (a wheel), else the checkout's."""
    inside = PACKAGE_DIR / name
    return inside if inside.is_dir() else CHECKOUT / name


#: The conformance suites (`suites/` of a checkout, vfio_conform/suites/ of a wheel).
SUITES_DIR = shipped("suites")
#: pytest's rootdir for the suites (the folder holding suites/), so test ids read
#: `suites/<area>/test_x.py::...` from a checkout and from a wheel alike.
SUITES_ROOT = SUITES_DIR.parent
#: The pytest configuration `vfio-conform run` gives the suites (-c; package data).
SUITES_INI = PACKAGE_DIR / "suites.ini"
#: The suites' pytest fixtures (`fixtures/` of a checkout; the plugin registers them).
FIXTURES_DIR = shipped("fixtures")
#: The built-in device profiles (`profiles/` of a checkout, package data of a wheel).
PROFILES_DIR = shipped("profiles")
#: Where `vfio-conform run` and the lab write the store, JUnit and Allure output by default: `reports`
#: of the current directory (a relative path, resolved where it is used; never the package's folder).
REPORTS_DIR = Path("reports")
#: File name of the SQLite result store inside a reports directory.
STORE_NAME = "results.sqlite"
#: The default result store (relative to the current directory, like REPORTS_DIR).
DEFAULT_STORE = REPORTS_DIR / STORE_NAME
#: Profiles of the current directory, searched first (relative to the current directory).
LOCAL_PROFILES_DIR = Path("profiles")
#: Directories searched for profiles after ./profiles and before the built-in ones (os.pathsep-separated).
PROFILES_ENV = "VFIO_CONFORM_PROFILES"


def reports_dir() -> Path:
    """The default reports directory as an absolute path: `reports` of the current directory."""
    return Path.cwd() / REPORTS_DIR


def user_cache_dir() -> Path:
    """`${XDG_CACHE_HOME:-~/.cache}/vfio-conform`: what the harness keeps between runs."""
    import os
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vfio-conform"

#: Result store path or postgresql:// URL, used when no --store/--vc-store is given.
STORE_ENV = "VFIO_CONFORM_STORE"
#: Seconds a store write waits for a lock held by another process.
STORE_WAIT_ENV = "VFIO_CONFORM_STORE_WAIT"
#: SQLite `synchronous` pragma for the store (NORMAL by default; FULL for a host that may lose power).
STORE_SYNC_ENV = "VFIO_CONFORM_STORE_SYNC"
#: The host name runs are stored under (default: the machine's; a fleet names its hosts with it).
HOST_ENV = "VFIO_CONFORM_HOST"
#: A file `fleet run` names for its child run: a device operation that hangs (plugin/watchdog.py)
#: writes one line there, and `fleet run` marks the host for recovery.
RECOVERY_FILE_ENV = "VFIO_CONFORM_RECOVERY_FILE"
#: Where the Allure results (a file per test) go, if not beside the JUnit file (the lab keeps them off 9p).
ALLURE_DIR_ENV = "VFIO_CONFORM_ALLURE_DIR"

#: Profiles `vfio-conform run` runs when none is named: every sim profile.
DEFAULT_PROFILES = ("sim-stop-copy", "sim-p2p", "sim-precopy", "sim-p2p-precopy", "sim-v1-mmap",
                    "sim-v1-slow", "sim-v1-small", "sim-mismatch")
