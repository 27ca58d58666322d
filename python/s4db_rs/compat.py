"""``S4DB``: the Python s4db 0.10 API over the s4db engine, for code that
uses the Python s4db today.

Swap the import and keep the calls::

    from s4db_rs.compat import S4DB          # was: from s4db import S4DB
    db = S4DB("my-bucket", "mydb/", local_dir="/data/mydb", region_name="eu-west-1")
    db.put({"k": "v"})
    db.upload()

What stays different (file names and layout, error types for network
failures, the smallest file size, ...) is listed in the package README's
"Coming from the Python s4db" table. The files it writes are s4db's own
format (FORMAT.md), so the CLI, ``s4db_rs.open`` and ``s4db_rs.open_remote``
read the same database.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Optional, Union
from urllib.parse import quote

from . import errors as _errors
from ._native import Db, Report
from ._native import open as _open

__all__ = [
    "S4DB",
    "S4DBError",
    "ConflictError",
    "CorruptEntryError",
    "CorruptIndexError",
    "CompactionError",
    "UnsyncedWritesError",
    "DEFAULT_MAX_FILE_SIZE",
    "MIN_FILE_SIZE",
    "MAX_KEY_BYTES",
]

DEFAULT_MAX_FILE_SIZE = 64 * 1024 * 1024
"""The Python s4db's default ``max_file_size`` (64 MiB), also s4db's."""

MIN_FILE_SIZE = 4 * 1024
"""The smallest segment size s4db accepts; a smaller ``max_file_size`` is
raised to it."""

MAX_KEY_BYTES = 65535
"""The longest key, in UTF-8 bytes (the same limit as the Python s4db)."""

S4DBError = _errors.Error
"""The base of every error ``S4DB`` raises: ``s4db_rs.Error`` itself, so
``except S4DBError`` also catches I/O and network failures."""


class ConflictError(_errors.ConflictError):
    """Another writer committed first (``upload(rebase=False)``, or a
    ``compact()`` that lost the race). Nothing of this writer was lost."""


class CorruptEntryError(_errors.CorruptionError, ValueError):
    """A record failed its checksum or could not be parsed."""


class CorruptIndexError(_errors.CorruptionError, ValueError):
    """``index.idx`` failed its checksum or could not be parsed."""


class UnsyncedWritesError(_errors.Error):
    """The operation would discard or invalidate writes that were never
    uploaded. Call ``upload()`` first, or pass ``force=True`` where offered."""


class CompactionError(_errors.Error):
    """Compaction could not run (kept for the Python s4db's ``except``
    clauses; s4db fetches what compaction needs instead of raising it)."""


# boto3 client keyword arguments S4DB understands, and where each goes.
_CLIENT_KWARGS = (
    "region_name",
    "endpoint_url",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
)

# botocore ``Config`` options that only tune how boto3 sends requests; s4db
# sends its own way, so these are accepted and have no effect.
_CONFIG_TUNING = frozenset(
    {
        "max_pool_connections",
        "tcp_keepalive",
        "parameter_validation",
        "user_agent",
        "user_agent_extra",
        "user_agent_appid",
        "request_checksum_calculation",
        "response_checksum_validation",
    }
)
# botocore ``Config`` options S4DB honours (see ``_from_config``).
_CONFIG_HONOURED = frozenset(
    {"region_name", "signature_version", "s3", "connect_timeout", "read_timeout", "retries"}
)

Value = Union[str, bytes]


@dataclass(frozen=True)
class _ConfigSettings:
    """What a botocore ``Config`` asks of s4db."""

    region: Optional[str] = None
    style: Optional[str] = None
    anonymous: bool = False
    timeout: Optional[float] = None
    retries: Optional[int] = None


def _from_config(config: object) -> _ConfigSettings:
    """Reads the options a caller set on a botocore ``Config``.

    ``region_name`` is the region; ``signature_version=botocore.UNSIGNED``
    sends unsigned requests (a public bucket); ``s3={"addressing_style":
    "path"|"virtual"|"auto"}`` picks the URL style; ``retries``'
    ``max_attempts`` (retries) or ``total_max_attempts`` (attempts) is how
    often a failed request is tried again (its ``mode`` is ignored: s4db
    backs off exponentially with jitter, like ``"standard"``);
    ``connect_timeout + read_timeout`` (botocore's defaults, 60 s each, for
    the one not set) bounds one remote operation, retries included. The
    options in ``_CONFIG_TUNING`` have no effect; any other option the
    caller set raises ``TypeError``, so that none is silently dropped.
    """
    provided = getattr(config, "_user_provided_options", None)
    if not isinstance(provided, dict):
        raise TypeError(
            f"config must be a botocore.config.Config, not {type(config).__name__}"
        )
    unsupported = sorted(set(provided) - _CONFIG_HONOURED - _CONFIG_TUNING)
    if unsupported:
        raise TypeError(
            f"S4DB() cannot honour the botocore Config option(s) {', '.join(unsupported)}; "
            f"it honours {', '.join(sorted(_CONFIG_HONOURED))}"
        )
    region = provided.get("region_name")
    if region is not None and not isinstance(region, str):
        raise TypeError(f"config region_name must be str, not {type(region).__name__}")
    anonymous = False
    if "signature_version" in provided:
        sig = provided["signature_version"]
        if sig is getattr(sys.modules.get("botocore"), "UNSIGNED", object()):
            anonymous = True
        elif sig not in ("s3v4", "v4"):
            raise ValueError(
                f"config signature_version must be botocore.UNSIGNED or 's3v4', not {sig!r}"
            )
    style = None
    s3 = provided.get("s3")
    if s3 is not None:
        if not isinstance(s3, dict):
            raise TypeError(f"config s3 must be a dict, not {type(s3).__name__}")
        other = sorted(set(s3) - {"addressing_style"})
        if other:
            raise TypeError(
                f"S4DB() cannot honour the botocore Config s3 option(s) {', '.join(other)}; "
                "it honours addressing_style"
            )
        addressing = s3.get("addressing_style", "auto")
        if addressing not in ("auto", "path", "virtual"):
            raise ValueError(
                f"config s3 addressing_style must be 'auto', 'path' or 'virtual', not {addressing!r}"
            )
        style = None if addressing == "auto" else addressing
    timeout = None
    if "connect_timeout" in provided or "read_timeout" in provided:
        parts = []
        for name in ("connect_timeout", "read_timeout"):
            v = provided.get(name, 60)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"config {name} must be a number of seconds, not {type(v).__name__}")
            if not 0 < v < float("inf"):
                raise ValueError(f"config {name} must be a positive number of seconds, not {v!r}")
            parts.append(float(v))
        timeout = parts[0] + parts[1]
    retries = None
    policy = provided.get("retries")
    if policy is not None:
        if not isinstance(policy, dict):
            raise TypeError(f"config retries must be a dict, not {type(policy).__name__}")
        if "total_max_attempts" in policy:
            attempts = policy["total_max_attempts"]
            if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
                raise ValueError(f"config retries total_max_attempts must be an int >= 1, not {attempts!r}")
            retries = attempts - 1
        elif "max_attempts" in policy:
            n = policy["max_attempts"]
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ValueError(f"config retries max_attempts must be an int >= 0, not {n!r}")
            retries = n
    return _ConfigSettings(region, style, anonymous, timeout, retries)


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Raises the Python s4db's exception classes for conflicts and
    corruption; every other error stays the ``s4db_rs`` one."""
    try:
        yield
    except _errors.ConflictError as e:
        if isinstance(e, ConflictError):
            raise
        raise ConflictError(str(e)) from e
    except _errors.CorruptionError as e:
        if isinstance(e, (CorruptEntryError, CorruptIndexError)):
            raise
        cls = CorruptIndexError if "index.idx" in str(e) else CorruptEntryError
        raise cls(str(e)) from e


def _check_key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"keys must be str, got {type(key).__name__}")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"key exceeds {MAX_KEY_BYTES} UTF-8 bytes")
    return key


def _remote_url(
    bucket: str,
    prefix: str,
    region: Optional[str],
    endpoint: Optional[str],
    style: Optional[str] = None,
    anonymous: bool = False,
) -> str:
    if not isinstance(bucket, str):
        raise TypeError(f"bucket must be str, got {type(bucket).__name__}")
    if not bucket:
        raise ValueError("bucket must not be empty")
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be str, got {type(prefix).__name__}")
    url = f"s3://{bucket}/{quote(prefix.strip('/'), safe='/')}"
    query = []
    if endpoint is not None:
        query.append("endpoint=" + quote(str(endpoint), safe=":/"))
    if region is not None:
        query.append("region=" + quote(str(region), safe=""))
    if style is not None:
        query.append("style=" + style)
    if anonymous:
        query.append("anonymous=true")
    return url + ("?" + "&".join(query) if query else "")


class S4DB:
    """A database in an S3 bucket with a local working copy, with the
    Python s4db 0.10 API.

    Opening costs one request for the remote's ``index.idx`` when
    ``local_dir`` is empty or not given (reads of data the directory lacks
    then go to the bucket as range requests); when ``local_dir`` already
    holds the database and has no unsynced writes, opening catches it up
    with the remote (``download()``: only segments it lacks are fetched).

    Args:
        bucket: the bucket's name.
        prefix: the key prefix of the database's objects (``"mydb/"``);
            leading and trailing slashes do not matter.
        local_dir: the working directory; default a temporary directory,
            removed by ``close()``.
        max_file_size: the size at which a segment file is closed and a new
            one started (default 64 MiB; at least 4 KiB).
        fenced: ``True`` (default): commits are conditional PUTs, and a
            concurrent commit is detected and rebased. ``False`` only for
            stores without conditional writes, with one writer.
        values: ``"str"`` (default): ``get`` returns ``str`` for values that
            are UTF-8 and ``bytes`` for the others; ``"bytes"``: always
            ``bytes``.
        timeout: seconds one remote operation (a request and its retries)
            may take before it raises ``s4db_rs.RemoteError``; default 120
            (each request also gives up after at most 30 s).
        retries: how often a failed request (5xx, 429, timeout, dropped
            connection) is tried again; default 8.
        config: a ``botocore.config.Config``. Its ``region_name``,
            ``signature_version=botocore.UNSIGNED`` (unsigned requests, for a
            public bucket), ``s3={"addressing_style": …}``, ``retries``
            (``max_attempts`` or ``total_max_attempts``) and
            ``connect_timeout + read_timeout`` (as ``timeout``) are
            honoured; ``max_pool_connections``, ``tcp_keepalive``,
            ``user_agent*``, ``parameter_validation`` and the checksum
            options have no effect; any other option it sets raises
            ``TypeError``. ``region_name``, ``timeout`` and ``retries``
            given as keyword arguments win over the config's.
        **client_kwargs: the boto3 keyword arguments ``region_name``,
            ``endpoint_url``, ``aws_access_key_id``, ``aws_secret_access_key``
            and ``aws_session_token``. Unset ones come from the standard
            ``AWS_*`` environment variables.

    Raises:
        TypeError: an unknown keyword argument, a ``config`` option s4db
            cannot honour, or a bucket or prefix that is not a ``str``.
        ValueError: a bad ``timeout``, ``retries`` or ``config`` value.
        s4db_rs.LockedError: another handle has ``local_dir`` open.
        s4db_rs.RemoteError: the bucket could not be reached.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str,
        local_dir: Optional[str] = None,
        max_file_size: int = DEFAULT_MAX_FILE_SIZE,
        fenced: bool = True,
        *,
        values: Literal["str", "bytes"] = "str",
        timeout: Optional[float] = None,
        retries: Optional[int] = None,
        config: Any = None,
        **client_kwargs: Any,
    ) -> None:
        unknown = sorted(set(client_kwargs) - set(_CLIENT_KWARGS))
        if unknown:
            raise TypeError(
                f"S4DB() got unsupported keyword argument(s) {', '.join(unknown)}; "
                f"it takes {', '.join(_CLIENT_KWARGS)}"
            )
        if values not in ("str", "bytes"):
            raise ValueError(f'values must be "str" or "bytes", not {values!r}')
        if isinstance(max_file_size, bool) or not isinstance(max_file_size, int):
            raise TypeError("max_file_size must be an int")
        if max_file_size <= 0:
            raise ValueError("max_file_size must be positive")
        settings = _ConfigSettings() if config is None else _from_config(config)
        region = client_kwargs.get("region_name")
        url = _remote_url(
            bucket,
            prefix,
            settings.region if region is None else region,
            client_kwargs.get("endpoint_url"),
            settings.style,
            settings.anonymous,
        )
        self.bucket = bucket
        self.prefix = prefix
        self.max_file_size = max_file_size
        self.fenced = bool(fenced)
        self._text = values == "str"
        self._owns_local_dir = local_dir is None
        path = tempfile.mkdtemp(prefix="s4db_") if local_dir is None else os.fspath(local_dir)
        fresh = not os.path.isdir(path) or not os.listdir(path)
        try:
            with _translated():
                self._db: Db = _open(
                    path,
                    "c",
                    remote=url,
                    keys="str",
                    values="bytes",
                    max_segment_size=max(max_file_size, MIN_FILE_SIZE),
                    access_key=client_kwargs.get("aws_access_key_id"),
                    secret_key=client_kwargs.get("aws_secret_access_key"),
                    session_token=client_kwargs.get("aws_session_token"),
                    timeout=settings.timeout if timeout is None else timeout,
                    retries=settings.retries if retries is None else retries,
                )
        except BaseException:
            if self._owns_local_dir:
                shutil.rmtree(path, ignore_errors=True)
            raise
        self.local_dir: Optional[str] = path
        if not fresh:
            # Like the Python s4db, show the remote's latest commit.
            self._catch_up()

    # ------------------------------------------------------------ state

    def _has_unsynced_writes(self) -> bool:
        c = self._db.changes()
        return bool(c.puts or c.deletes or c.compacted or c.restored)

    def _download_if_committed(self) -> None:
        """Downloads the remote's latest commit, if it has one (only the
        segments the directory lacks)."""
        with contextlib.suppress(_errors.NotFoundError), _translated():
            self._db.download()

    def _catch_up(self) -> None:
        """Takes the remote's latest commit unless there are unsynced writes."""
        if not self._has_unsynced_writes():
            self._download_if_committed()

    def _restore_if_index_lost(self) -> Optional[Report]:
        """The rebuild report of a restore, when the remote has segments but
        no ``index.idx`` and ``local_dir`` holds no key; else ``None``."""
        if len(self._db) != 0:
            return None
        try:
            with _translated():
                restored = self._db.restore_from_remote()
        except _errors.InvalidArgumentError:
            return None  # the remote has an index.idx: a download takes it
        except _errors.NotFoundError:
            return None  # no segment either: nothing to bring back
        report: Report = restored.rebuild
        return report

    def _require_synced(self, what: str) -> None:
        if self._has_unsynced_writes():
            raise UnsyncedWritesError(f"local writes have not been uploaded; upload() before {what}")

    def _value(self, raw: Optional[bytes]) -> Optional[Value]:
        if raw is None or not self._text:
            return raw
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw

    # ------------------------------------------------------------ sync

    def download(self, force: bool = False) -> None:
        """Makes ``local_dir`` a copy of the remote's latest commit,
        fetching only the segments it lacks.

        Raises:
            UnsyncedWritesError: there are writes that were never uploaded
                (``force=True`` discards them).
        """
        if not force:
            self._require_synced("download(); or pass force=True to discard them")
        with _translated():
            self._db.download(force=force)

    def upload(self, rebase: bool = True) -> Report:
        """Publishes local writes: new segments, then ``index.idx`` with a
        conditional PUT. Sends only what changed since the last upload.

        With ``rebase=True`` (default) a commit another writer made first is
        merged (per key, the later commit wins) and the commit retried.

        Returns the ``UploadReport`` (the Python s4db returns ``None``).

        Raises:
            ConflictError: another writer committed first and ``rebase`` is
                ``False``; nothing was lost (upload again to merge). Also
                when the bucket has no ``index.idx`` but holds the segments
                of a database this ``local_dir`` does not continue (its
                index was lost): nothing is sent, and
                ``rebuild_index(from_s3=True)`` on an empty ``local_dir``
                brings that database back.
        """
        with _translated():
            return self._db.upload(rebase=rebase, single_writer=not self.fenced)

    # ------------------------------------------------------------ reads

    def get(self, key: str) -> Optional[Value]:
        """The value of ``key``, or ``None``. Reads the local copy, or one
        range request to the bucket for data the directory lacks."""
        _check_key(key)
        with _translated():
            return self._value(self._db.get(key))

    def get_many(self, keys: Iterable[str], max_workers: int = 8) -> dict[str, Optional[Value]]:
        """``{key: value or None}`` for ``keys``. Remote reads are coalesced
        and run in parallel (``max_workers`` is accepted and ignored)."""
        ks = [_check_key(k) for k in keys]
        with _translated():
            got = self._db.get_many(ks)
        return {k: self._value(v) for k, v in zip(ks, got)}

    def keys(self) -> list[str]:
        """Every live key, in key order."""
        with _translated():
            return list(self._db.keys())

    def __len__(self) -> int:
        return len(self._db)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        with _translated():
            return key in self._db

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def iter(self, local: bool = False) -> Iterator[tuple[str, Value]]:
        """Yields ``(key, value)`` for every live key, in key order.

        With ``local=True`` the data is fetched into ``local_dir`` first
        (only the segments it lacks, and only when there are no unsynced
        writes), so that iterating makes no requests.
        """
        if local:
            self._catch_up()
        with _translated():
            it = self._db.items()
        for key, raw in it:
            value = self._value(raw)
            assert value is not None
            yield key, value

    def items(self, local: bool = False) -> Iterator[tuple[str, Value]]:
        """The same as ``iter(local)``."""
        return self.iter(local=local)

    # ------------------------------------------------------------ writes

    def put(self, items: Mapping[str, Value]) -> None:
        """Writes the pairs of ``items`` in one atomic batch (local until
        ``upload()``). Every key and value is checked before anything is
        written.

        Raises:
            TypeError: a key that is not ``str``, or a value that is not
                ``str`` or ``bytes``.
            ValueError: a key longer than 65,535 UTF-8 bytes.
        """
        if not isinstance(items, Mapping):
            raise TypeError(f"put takes a dict of key: value, not {type(items).__name__}")
        for key, value in items.items():
            _check_key(key)
            if not isinstance(value, (str, bytes)):
                raise TypeError(
                    f"values must be str or bytes, got {type(value).__name__} for key {key!r}"
                )
        if items:
            with _translated():
                self._db.put_many(items)

    def delete(self, keys: Iterable[str]) -> None:
        """Deletes ``keys`` in one atomic batch; keys that do not exist are
        skipped (nothing is written for them)."""
        if isinstance(keys, (str, bytes)):
            raise TypeError("delete takes a list of keys, not a single key")
        ks = [_check_key(k) for k in keys]
        if ks:
            with _translated():
                self._db.delete_many(ks)

    def flush(self) -> None:
        """Makes every write durable and writes the local ``index.idx``, so
        that the next open replays nothing."""
        with _translated():
            self._db.checkpoint()

    # ------------------------------------------------------------ maintenance

    def compact(self) -> Report:
        """Rewrites the data without overwritten and deleted records, and
        publishes the result.

        Catches up with the remote first (fetching the segments the
        directory lacks), compacts locally, then commits with a conditional
        PUT. The replaced objects stay in the bucket until ``gc()`` (after
        its grace period), so readers with the old index keep working.

        Raises:
            UnsyncedWritesError: there are writes that were never uploaded.
            ConflictError: another writer committed during the compaction;
                the directory is back at the remote's state and nothing was
                published.
        """
        self._require_synced("compact()")
        self._download_if_committed()
        with _translated():
            report = self._db.compact(full=True)
        try:
            with _translated():
                self._db.upload(rebase=False, single_writer=not self.fenced)
        except ConflictError:
            with _translated():
                self._db.download(force=True)
            raise
        return report

    def rebuild_index(self, from_s3: bool = False) -> Report:
        """Rebuilds the index from the segments in ``local_dir``, keeping
        every record whose checksum is good.

        With ``from_s3=True`` the remote's segments are fetched first (when
        there are no unsynced writes and the remote has a database). When
        the remote's ``index.idx`` was lost and ``local_dir`` holds no key,
        the database is brought back from the segment objects under the
        prefix instead (``Db.restore_from_remote``); ``upload()`` then
        commits a new ``index.idx`` without sending them again.

        Warns (``UserWarning``) for each damaged byte range it skipped; the
        report lists them too.
        """
        report = self._restore_if_index_lost() if from_s3 else None
        if report is None:
            if from_s3:
                self._catch_up()
            with _translated():
                report = self._db.rebuild_index()
        damaged = list(report.skipped) + ([report.torn_tail] if report.torn_tail else [])
        for d in damaged:
            warnings.warn(
                f"rebuild_index: skipped bytes {d.start}..{d.end} of {d.file}, torn or corrupt: {d.reason}",
                stacklevel=2,
            )
        return report

    def gc(self, grace_seconds: float = 24 * 3600) -> list[str]:
        """Deletes remote segments and index runs that no commit younger
        than ``grace_seconds`` (default 24 h) needs, and those of crashed
        uploads older than it; returns their names. Objects s4db did not
        write are never deleted.

        Raises:
            UnsyncedWritesError: there are writes that were never uploaded.
        """
        self._require_synced("gc()")
        with _translated():
            return list(self._db.gc(grace=grace_seconds).deleted)

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Closes the database; removes ``local_dir`` if it was a temporary
        directory made by ``S4DB``. Does not upload. Closing twice is
        allowed."""
        self._db.close()
        if self._owns_local_dir and self.local_dir is not None:
            shutil.rmtree(self.local_dir, ignore_errors=True)
            self.local_dir = None
            self._owns_local_dir = False

    def __enter__(self) -> S4DB:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<s4db_rs.compat.S4DB s3://{self.bucket}/{self.prefix.strip('/')} in {self.local_dir!r}>"
