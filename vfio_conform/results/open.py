"""Pick the store backend from a path or URL (`--store`, or the VFIO_CONFORM_STORE environment variable)."""
from __future__ import annotations

import os
import re
from pathlib import Path

from ..base.constants import STORE_ENV
from .sql import SqlStore, StoreError

ENV_VAR = STORE_ENV
_PG_SCHEMES = ("postgresql://", "postgres://")
#: Something that reads as a URL (scheme://...): only sqlite:/// and the PostgreSQL schemes are stores.
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):/")


def check_location(location: str | os.PathLike) -> str:
    """`location` if it names a store kind the harness has (a SQLite path, sqlite:///PATH, a
    PostgreSQL URL); StoreError (password masked) otherwise, before anything is created."""
    text = str(location)
    m = _URL.match(text)
    if m is None or is_postgres(text) or text.startswith("sqlite:///"):
        return text
    if m.group(1).lower() == "sqlite":
        raise StoreError(f"result store {text}: a SQLite URL is sqlite:///PATH (three slashes, "
                         "then an absolute path)")
    raise StoreError(f"result store {text}: {m.group(1)!r} stores are not supported (a SQLite path, "
                     "sqlite:///PATH or postgresql://...)")


def store_location(value: str | os.PathLike | None, default: str | os.PathLike | None = None) -> str:
    """The store to use: an explicit value, else $VFIO_CONFORM_STORE, else `default`."""
    chosen = value or os.environ.get(ENV_VAR) or default
    if not chosen:
        raise ValueError(f"no result store given (--store or ${ENV_VAR})")
    return str(chosen)


def is_postgres(location: str | os.PathLike) -> bool:
    return str(location).startswith(_PG_SCHEMES)


def store_exists(location: str | os.PathLike) -> bool:
    """False only for a SQLite file that is not there yet (a server store always 'exists');
    StoreError for a location that is no kind of store."""
    check_location(location)
    return is_postgres(location) or Path(_sqlite_path(str(location))).exists()


def open_store(location: str | os.PathLike | None = None, readonly: bool = False) -> SqlStore:
    """A ResultStore (SQLite path or sqlite:///path) or PostgresStore (postgresql://...).

    Readers (results, report, diff) pass readonly=True: the store is not changed in any way.
    Raises StoreError (one line) when the store cannot be used.
    """
    location = check_location(store_location(location))
    if is_postgres(location):
        from .postgres import PostgresStore
        return PostgresStore(location, readonly=readonly)
    from .store import ResultStore
    path = _sqlite_path(location)
    if readonly and not Path(path).exists():
        raise StoreError(f"result store {path}: does not exist (run 'vfio-conform run' first)")
    return ResultStore(path, readonly=readonly)


def _sqlite_path(location: str) -> str:
    return location.removeprefix("sqlite://") if location.startswith("sqlite:///") else location


def import_runs(dest: SqlStore, location: str | os.PathLike) -> list[int]:
    """Copy every run of the store at `location` (opened read-only) into `dest`; the new run ids."""
    src = open_store(location, readonly=True)
    try:
        return dest.import_from(src)
    finally:
        src.close()
