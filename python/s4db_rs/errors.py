"""The exceptions s4db_rs raises.

Every error of the engine is an :class:`Error`; each kind is a subclass, and
some also derive from the built-in exception Python code already catches for
that kind (``ValueError`` for invalid input, ``OSError`` for I/O and network
failures, ``LookupError`` for something that is not there).
"""


class Error(Exception):
    """Base class of every s4db error."""


class IoError(Error, OSError):
    """A local file could not be read or written (the message names it)."""


class CorruptionError(Error):
    """Stored bytes failed a check (a checksum, a header, a length); the
    message names the file and offset. Nothing was changed."""


class InvalidArgumentError(Error, ValueError):
    """An argument s4db cannot use: a key or value too large, a bad remote
    URL, an option out of range."""


class LockedError(Error):
    """Another writer holds the database directory."""


class ClosedError(Error):
    """The handle was closed."""


class ReadOnlyError(Error):
    """A write on a read-only handle (``flag="r"``, or a remote alone)."""


class NotFoundError(Error, LookupError):
    """No database where one was expected (a directory opened with ``"w"`` or
    ``"r"``, a remote with no ``index.idx``)."""


class ConflictError(Error):
    """Another writer committed to the remote first (upload with
    ``rebase=True``), or local writes would be lost (download with
    ``force=True``)."""


class RemoteError(Error, OSError):
    """The remote store failed or refused (network, HTTP status); the message
    names the host and what s4db was doing."""


class OnRemoteError(Error, LookupError):
    """What was asked for is in a segment only the remote holds (the directory
    reads through its remote, or a copy lost a segment file) and no remote is
    attached: open with ``remote=URL`` to read it, or ``download()`` to fetch
    what the directory lacks. Nothing is damaged."""


__all__ = [
    "Error",
    "IoError",
    "CorruptionError",
    "InvalidArgumentError",
    "LockedError",
    "ClosedError",
    "ReadOnlyError",
    "NotFoundError",
    "ConflictError",
    "RemoteError",
    "OnRemoteError",
]
