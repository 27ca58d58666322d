"""Type stubs of the native module (built from python/src)."""

import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal, Optional, Union, overload

_BytesLike = Union[bytes, bytearray, memoryview, str]
_Mode = Literal["bytes", "str"]

__version__: str

class Report:
    """A report with the fields of its Rust counterpart (``kind`` names it,
    for example ``"UploadReport"``); immutable, compared by value."""

    @property
    def kind(self) -> str: ...
    def __getattr__(self, name: str) -> Any: ...
    def _asdict(self) -> dict[str, Any]: ...

class KeyIterator(Iterator[Any]):
    """Keys (``bytes``, or ``str`` with ``keys="str"``) from a sorted list
    taken when it was made."""

    def __iter__(self) -> "KeyIterator": ...
    def __next__(self) -> Any: ...
    def __length_hint__(self) -> int: ...

class ItemIterator(Iterator[Any]):
    """Pairs or values read lazily in key order, from a view of the
    database taken when it was made."""

    def __iter__(self) -> "ItemIterator": ...
    def __next__(self) -> Any: ...

class Db:
    """An open database: a ``MutableMapping`` of keys to values."""

    def __getitem__(self, key: _BytesLike) -> Any:
        """The value of ``key``; ``KeyError`` if there is none."""
    def __setitem__(self, key: _BytesLike, value: _BytesLike) -> None:
        """Puts ``key``; str is stored as UTF-8."""
    def __delitem__(self, key: _BytesLike) -> None:
        """Deletes ``key``; ``KeyError`` if there is none."""
    def __contains__(self, key: object) -> bool: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> KeyIterator: ...
    def __enter__(self) -> "Db": ...
    def __exit__(self, *args: object) -> Literal[False]: ...
    @overload
    def get(self, key: _BytesLike) -> Optional[Any]: ...
    @overload
    def get(self, key: _BytesLike, default: Any) -> Any: ...
    def keys(self) -> KeyIterator:
        """Every key, sorted (no value is read)."""
    def items(self) -> ItemIterator:
        """``(key, value)`` pairs in key order, read lazily."""
    def values(self) -> ItemIterator:
        """Values in key order, read lazily."""
    def scan_prefix(self, prefix: _BytesLike) -> ItemIterator:
        """``(key, value)`` pairs of the keys starting with ``prefix``."""
    def put_many(
        self,
        items: Union[Mapping[Any, Any], Iterable[tuple[_BytesLike, _BytesLike]]],
        ttl: Optional[float] = None,
    ) -> None:
        """Puts every pair in one atomic batch; with ``ttl`` (seconds > 0),
        each key expires that long from now."""
    def put_with_ttl(self, key: _BytesLike, value: _BytesLike, ttl: float) -> None:
        """Sets ``key`` until ``ttl`` seconds (> 0) from now; then it reads
        as absent everywhere (get, ``in``, iteration, remote reads) and
        compaction drops it. ``len()`` counts it until that compaction."""
    def metadata(self) -> dict[str, bytes]:
        """The database metadata: committed with the data, at most 64 KiB,
        visible to a remote reader from its first read."""
    def set_metadata(self, name: str, value: _BytesLike) -> None:
        """Sets metadata ``name`` and commits it with everything written
        before; ``upload`` publishes it with the data."""
    def remove_metadata(self, name: str) -> None:
        """Removes metadata ``name`` (nothing happens if it is not set)."""
    def update_metadata(self, changes: Mapping[str, Optional[_BytesLike]]) -> None:
        """Sets (or, for ``None``, removes) several names in one commit."""
    def get_many(self, keys: Iterable[_BytesLike]) -> list[Optional[Any]]:
        """Values in the order of ``keys``, ``None`` where missing."""
    def delete_many(self, keys: Iterable[_BytesLike]) -> None:
        """Deletes every key in one atomic batch; missing keys are fine."""
    def delete_prefix(self, prefix: _BytesLike) -> int:
        """Deletes every key starting with ``prefix`` in one atomic write."""
    def delete_range(
        self, start: Optional[_BytesLike] = None, end: Optional[_BytesLike] = None
    ) -> int:
        """Deletes every key in ``[start, end)`` in one atomic write."""
    def flush(self) -> None:
        """Makes every write so far durable."""
    def checkpoint(self) -> None:
        """Writes the index, so that the next open replays nothing."""
    def compact(self, full: bool = False, min_dead_percent: int = 50) -> Report:
        """Rewrites the segments of which at least ``min_dead_percent`` (1 to
        100) of the bytes are dead, leaving the others alone; ``full=True``
        rewrites every segment and drops every tombstone (a
        ``CompactionReport``; ``segments_rewritten`` says how many)."""
    def rebuild_index(self) -> Report:
        """Rebuilds the index from the segments (a ``RebuildReport``)."""
    def verify(self) -> Report:
        """Checks every checksum (a ``VerifyReport``; ``problems`` lists)."""
    def stats(self) -> Report:
        """Sizes and counts (``Stats``)."""
    def upload(self, rebase: bool = False, single_writer: bool = False) -> Report:
        """Sends new segments, then commits the index (``UploadReport``)."""
    def download(self, force: bool = False) -> Report:
        """Makes the directory a copy of its remote (``DownloadReport``)."""
    def restore_from_remote(self) -> Report:
        """Brings back a database whose remote ``index.idx`` was lost: fetches
        its segment objects into this directory (which must hold no key)
        and rebuilds the index from them, keeping every record whose
        checksum is good; ``upload()`` then commits a new ``index.idx``
        without sending them again. Writes nothing remote; one that stops
        part way is finished by calling it again (``upload()`` refuses
        until then). Returns a
        ``RestoreReport`` (``segments_downloaded``, ``segment_bytes``,
        ``segments_present``, ``rebuild``: a ``RebuildReport``).

        Raises:
            ValueError: the remote has an ``index.idx`` (``download()`` it),
                or this directory holds keys.
            NotFoundError: the prefix holds no segment either.
        """
    def gc(self, grace: float = 3600.0) -> Report:
        """Deletes remote segments no reader can need (``GcReport``)."""
    def changes(self) -> Report:
        """What the next upload would publish (``Changes``: ``puts``,
        ``deletes``, ``compacted``, ``restored`` (a restore waits for the
        upload that commits its ``index.idx``), and ``changes``, a list of
        ``(key, "put" | "delete", value_len | None)`` sorted by key)."""
    def discard(self, keys: Optional[Iterable[_BytesLike]] = None) -> Report:
        """Drops unsynced changes of every key, or of ``keys``; they read as
        at the last sync again (``DiscardReport``). Crash safe."""
    def delete_remote(self) -> Report:
        """Deletes the database from its remote, ``index.idx`` first
        (``DeleteRemoteReport``). The local directory stays."""
    def copy_remote(
        self,
        url: str,
        *,
        access_key: Optional[str] = None,
        secret_key: Optional[str] = None,
        session_token: Optional[str] = None,
        timeout: Optional[float] = None,
        retries: Optional[int] = None,
    ) -> Report:
        """Copies the remote's committed state to ``url``, its ``index.idx``
        last; a second run resumes (``CopyRemoteReport``). ``timeout`` and
        ``retries`` as for ``open``, for the destination."""
    def merge_index(self) -> None:
        """Folds every index run into one (after an ingest of many shards:
        one run per lookup again, exact ``len()``); reads and writes the
        index only, and the next ``upload()`` sends the one new run."""
    def stage(
        self,
        url: str,
        name: str,
        *,
        access_key: Optional[str] = None,
        secret_key: Optional[str] = None,
        session_token: Optional[str] = None,
        timeout: Optional[float] = None,
        retries: Optional[int] = None,
    ) -> Report:
        """Stages this database (a shard built on its own, with no remote)
        as ``name`` of the database at ``url``: its segments and index runs,
        then a manifest. Readers see nothing until ``s4db_rs.ingest``
        commits it (``StageReport``). ``timeout`` and ``retries`` as for
        ``open``."""
    def refresh(self) -> bool:
        """On a remote-only handle: moves to a newer commit, if any."""
    def close(self) -> None:
        """Flushes and closes; later calls raise ``ClosedError``."""

def open(
    path: Union[str, "os.PathLike[str]"],
    flag: Literal["r", "w", "c", "n"] = "c",
    remote: Optional[str] = None,
    *,
    keys: _Mode = "bytes",
    values: _Mode = "bytes",
    max_segment_size: Optional[int] = None,
    sync: Optional[Literal["never", "flush", "always"]] = None,
    lock_wait: Optional[float] = None,
    access_key: Optional[str] = None,
    secret_key: Optional[str] = None,
    session_token: Optional[str] = None,
    timeout: Optional[float] = None,
    retries: Optional[int] = None,
) -> Db:
    """Opens the database in directory ``path`` (see the package README).

    ``timeout``: seconds one remote operation (a request and its retries)
    may take before it raises ``RemoteError``; default 120, and each
    request also gives up after at most 30 s. ``retries``: how many times a
    failed request is tried again (5xx, 429, timeouts, dropped
    connections); default 8. Both raise ``ValueError`` unless positive
    (``timeout``) or 0 or more (``retries``)."""

def open_remote(
    url: str,
    *,
    keys: _Mode = "bytes",
    values: _Mode = "bytes",
    access_key: Optional[str] = None,
    secret_key: Optional[str] = None,
    session_token: Optional[str] = None,
    timeout: Optional[float] = None,
    retries: Optional[int] = None,
) -> Db:
    """A read-only handle on the database at ``url``, with no local copy.
    ``timeout`` and ``retries`` as for ``open``."""

def memory(
    remote: Optional[str] = None,
    *,
    keys: _Mode = "bytes",
    values: _Mode = "bytes",
    max_segment_size: Optional[int] = None,
    sync: Optional[str] = None,
    access_key: Optional[str] = None,
    secret_key: Optional[str] = None,
    session_token: Optional[str] = None,
    timeout: Optional[float] = None,
    retries: Optional[int] = None,
) -> Db:
    """A new, empty in-memory database with the same API: its files live in
    a private directory in RAM (``/dev/shm`` on Linux), removed by
    ``close()`` (or when the last reference is dropped). With ``remote``, it starts from the
    remote's index and ``upload()`` publishes to it. ``timeout`` and
    ``retries`` as for ``open``."""

def ingest(
    url: str,
    names: list[str],
    *,
    access_key: Optional[str] = None,
    secret_key: Optional[str] = None,
    session_token: Optional[str] = None,
    timeout: Optional[float] = None,
    retries: Optional[int] = None,
) -> Report:
    """Commits the shards staged as ``names`` to the database at ``url`` in
    one conditional write: readers see all of them or none. Where shards
    hold the same key, the one named last wins. Moves no record: the cost
    grows with the number of shards (``IngestReport``). ``timeout`` and
    ``retries`` as for ``open``."""

def migrate(
    source: str,
    path: Union[str, "os.PathLike[str]"],
    *,
    mode: Optional[Literal["index", "replay"]] = None,
    access_key: Optional[str] = None,
    secret_key: Optional[str] = None,
    session_token: Optional[str] = None,
    timeout: Optional[float] = None,
    retries: Optional[int] = None,
) -> Report:
    """Converts the database the Python s4db (0.8 or 0.10) wrote at
    ``source`` (``s3://BUCKET/PREFIX``, ``https://…`` or its local
    directory) into the s4db database in ``path`` (new, or an earlier
    migration of the same source: running it again finishes an interrupted
    one). Every record's CRC-32 is checked; the source is only read.
    ``mode``: ``"index"`` (the source's last commit; the default for
    remotes) or ``"replay"`` (every data file; the default for a local
    directory). Returns a ``MigrateReport``. ``timeout`` and ``retries``
    as for ``open``, for the source."""
