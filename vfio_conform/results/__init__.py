"""Run results: outcome model, SQLite/PostgreSQL stores, and the pytest listener that fills them."""
from .model import Outcome, Reason, RunMeta, RunStatus, TestRecord, describe_reason  # noqa: F401
from .open import ENV_VAR, import_runs, open_store, store_exists, store_location  # noqa: F401
from .sql import SqlStore, StoreError  # noqa: F401
from .store import ResultStore  # noqa: F401
