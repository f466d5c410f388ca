"""Run results: outcome model, SQLite/PostgreSQL stores, and the pytest listener that fills them."""
from .model import Outcome, RunMeta, TestRecord  # noqa: F401
from .open import ENV_VAR, open_store, store_exists, store_location  # noqa: F401
from .sql import SqlStore  # noqa: F401
from .store import ResultStore  # noqa: F401
