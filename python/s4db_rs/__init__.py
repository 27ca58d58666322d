"""s4db_rs: the s4db engine (Rust) with a dict-like, synchronous Python API.

>>> import s4db_rs
>>> with s4db_rs.open("/tmp/example-db") as db:
...     db[b"key"] = b"value"
...     db[b"key"]
b'value'

See the package README for the whole API, and FORMAT.md for the files.
"""

from collections.abc import MutableMapping

from . import errors
from ._native import (
    Db,
    ItemIterator,
    KeyIterator,
    Report,
    __version__,
    ingest,
    memory,
    migrate,
    open,
    open_remote,
)
from .compat import S4DB
from .errors import *  # noqa: F403 (the exception classes, listed in errors.__all__)
from .errors import __all__ as _errors_all

MutableMapping.register(Db)

__all__ = [
    "Db",
    "ItemIterator",
    "KeyIterator",
    "Report",
    "__version__",
    "open",
    "open_remote",
    "memory",
    "ingest",
    "migrate",
    "S4DB",
    "errors",
    "compat",
]
__all__ += _errors_all
