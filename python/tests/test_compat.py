"""s4db_rs.compat.S4DB, the Python s4db's API, against the loopback S3 server.
(The Python s4db's own suite runs too: python/tests/s4db_suite/run.sh.)"""

from __future__ import annotations

import os

import pytest

import s4db_rs
from s4db_rs import compat
from s4db_rs.compat import S4DB


def test_a_database_written_by_s4db_class_reads_back_through_open_remote(tmp_path, s3_server, prefix):
    with S4DB(s3_server.bucket, prefix + "/", local_dir=str(tmp_path / "w"), **s3_server.client_kwargs()) as db:
        db.put({"text": "héllo", "blob": b"\xff\x00", "empty": ""})
        db.delete(["missing"])  # nothing to delete, nothing written
        assert db.upload().kind == "UploadReport"
    reader = s4db_rs.open_remote(
        s3_server.url(prefix), access_key=s3_server.access_key, secret_key=s3_server.secret_key
    )
    assert dict(reader.items()) == {b"blob": b"\xff\x00", b"empty": b"", b"text": "héllo".encode()}
    reader.close()


def test_values_str_returns_str_for_utf8_and_bytes_otherwise_and_values_bytes_always_bytes(
    tmp_path, s3_server, prefix
):
    with S4DB(s3_server.bucket, prefix, local_dir=str(tmp_path / "a"), **s3_server.client_kwargs()) as db:
        db.put({"t": "x", "b": b"\xff"})
        assert db.get("t") == "x" and db.get("b") == b"\xff"
        assert db.get_many(["t", "b", "none"]) == {"t": "x", "b": b"\xff", "none": None}
        assert dict(db.iter()) == {"t": "x", "b": b"\xff"}
        db.upload()
    with S4DB(
        s3_server.bucket, prefix, local_dir=str(tmp_path / "b"), values="bytes", **s3_server.client_kwargs()
    ) as db:
        assert db.get("t") == b"x"
        assert db.keys() == ["b", "t"]


def test_bad_arguments_raise_before_anything_is_written(tmp_path, s3_server, prefix):
    kw = s3_server.client_kwargs()
    with pytest.raises(TypeError, match="config"):
        S4DB(s3_server.bucket, prefix, local_dir=str(tmp_path / "x"), config=object(), **kw)
    with pytest.raises(ValueError, match="values"):
        S4DB(s3_server.bucket, prefix, local_dir=str(tmp_path / "x"), values="text", **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bucket"):
        S4DB("", prefix, **kw)
    with pytest.raises(TypeError, match="bucket"):
        S4DB(None, prefix, **kw)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="prefix"):
        S4DB(s3_server.bucket, 7, **kw)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_file_size"):
        S4DB(s3_server.bucket, prefix, max_file_size="big", **kw)  # type: ignore[arg-type]
    with S4DB(s3_server.bucket, prefix, local_dir=str(tmp_path / "d"), **kw) as db:
        with pytest.raises(TypeError):
            db.put({"ok": "v", 42: "v"})  # type: ignore[dict-item]
        with pytest.raises(TypeError):
            db.put({"ok": 1.5})  # type: ignore[dict-item]
        with pytest.raises(TypeError):
            db.put([("k", "v")])  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="single key"):
            db.delete("abc")
        with pytest.raises(ValueError, match="exceeds"):
            db.get("k" * 70_000)
        assert len(db) == 0 and db.keys() == []
        assert 42 not in db  # type: ignore[operator]


def test_upload_without_rebase_raises_a_conflict_that_is_both_exception_classes(tmp_path, s3_server, prefix):
    kw = s3_server.client_kwargs()
    a = S4DB(s3_server.bucket, prefix, local_dir=str(tmp_path / "a"), **kw)
    b = S4DB(s3_server.bucket, prefix, local_dir=str(tmp_path / "b"), **kw)
    a.put({"a": "1"})
    a.upload()
    b.put({"b": "2"})
    with pytest.raises(compat.ConflictError) as caught:
        b.upload(rebase=False)
    assert isinstance(caught.value, s4db_rs.ConflictError)
    assert isinstance(caught.value, compat.S4DBError)
    assert b.upload().rebased == 1
    with pytest.raises(compat.UnsyncedWritesError):
        a.put({"c": "3"}) or a.download()
    a.download(force=True)
    assert a.get("b") == "2" and a.get("c") is None
    a.close()
    b.close()


def test_reopening_a_directory_shows_the_commit_another_writer_made_meanwhile(tmp_path, s3_server, prefix):
    kw = s3_server.client_kwargs()
    with S4DB(s3_server.bucket, prefix, local_dir=str(tmp_path / "a"), **kw) as a:
        a.put({"k": "old"})
        a.upload()
    with S4DB(s3_server.bucket, prefix, local_dir=str(tmp_path / "b"), **kw) as b:
        b.put({"k": "new", "other": "x"})
        b.upload()
    with S4DB(s3_server.bucket, prefix, local_dir=str(tmp_path / "a"), **kw) as a:
        assert a.get("k") == "new"
        assert len(a) == 2


def test_compact_publishes_and_gc_returns_the_names_of_the_objects_it_deleted(tmp_path, s3_server, prefix):
    with S4DB(s3_server.bucket, prefix, local_dir=str(tmp_path / "a"), **s3_server.client_kwargs()) as db:
        db.put({"k": "1"})
        db.upload()
        db.put({"k": "2"})
        db.upload()
        with pytest.raises(compat.UnsyncedWritesError):
            db.put({"x": "y"}) or db.compact()
        db.upload()
        before = sorted(n for n in os.listdir(db.local_dir) if n.endswith(".s4db"))
        db.compact()
        assert db.gc(grace_seconds=3600) == []
        deleted = db.gc(grace_seconds=0)
        # The replaced segments, and the index runs (FORMAT.md §4.7) that
        # merges and the compaction replaced.
        segments = [n for n in deleted if n.endswith(".s4db")]
        runs = [n for n in deleted if n.startswith("index_") and n.endswith(".run")]
        assert segments and set(segments) <= set(before)
        assert runs and len(segments) + len(runs) == len(deleted)
        assert deleted == sorted(deleted)
        assert db.get("k") == "2" and db.get("x") == "y"


def test_a_temporary_local_dir_is_removed_by_close_and_a_given_one_is_kept(tmp_path, s3_server, prefix):
    db = S4DB(s3_server.bucket, prefix, **s3_server.client_kwargs())
    db.put({"k": "v"})
    made = db.local_dir
    assert made is not None and os.path.isdir(made)
    db.close()
    db.close()
    assert not os.path.exists(made)
    with S4DB(s3_server.bucket, prefix, local_dir=str(tmp_path / "keep"), **s3_server.client_kwargs()):
        pass
    assert (tmp_path / "keep").is_dir()


def test_a_closed_s4db_raises_closed_error_and_threads_share_one_safely(tmp_path, s3_server, prefix):
    import threading

    db = S4DB(s3_server.bucket, prefix, local_dir=str(tmp_path / "a"), **s3_server.client_kwargs())
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(200):
                db.put({f"t{t}-{i}": str(i)})
                assert db.get(f"t{t}-{i}") == str(i)
        except BaseException as e:  # noqa: BLE001 (collected and asserted below)
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == [] and len(db) == 800
    db.close()
    with pytest.raises(s4db_rs.ClosedError):
        db.get("t0-0")
    with pytest.raises(s4db_rs.ClosedError):
        db.put({"k": "v"})


def test_a_botocore_config_gives_region_addressing_style_and_retries(tmp_path, s3_server, prefix):
    from botocore.config import Config

    kw = s3_server.client_kwargs()
    del kw["region_name"]
    config = Config(
        region_name="us-east-1",
        s3={"addressing_style": "path"},
        retries={"total_max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=20,
        max_pool_connections=4,
    )
    with S4DB(s3_server.bucket, prefix, local_dir=str(tmp_path / "a"), config=config, **kw) as db:
        db.put({"k": "v"})
        db.upload()
    reader = s4db_rs.open_remote(
        s3_server.url(prefix), access_key=s3_server.access_key, secret_key=s3_server.secret_key
    )
    assert dict(reader.items()) == {b"k": b"v"}
    reader.close()


def test_a_config_with_unsigned_signature_sends_unsigned_requests_even_with_credentials(
    tmp_path, s3_server, prefix
):
    from botocore import UNSIGNED
    from botocore.config import Config

    unsigned = Config(signature_version=UNSIGNED)
    # The server that checks signatures refuses unsigned requests.
    with pytest.raises(s4db_rs.RemoteError, match="access denied"):
        S4DB(s3_server.bucket, prefix, local_dir=str(tmp_path / "a"), config=unsigned, **s3_server.client_kwargs())
    assert not os.listdir(tmp_path / "a")
    # The public endpoint (the same bucket, no signatures) takes them.
    public = {"endpoint_url": s3_server.public_endpoint, "region_name": "us-east-1"}
    with S4DB(s3_server.bucket, prefix, local_dir=str(tmp_path / "b"), config=unsigned, **public) as db:
        db.put({"k": "v"})
        db.upload()
    with S4DB(s3_server.bucket, prefix, config=unsigned, **public) as db:
        assert db.get("k") == "v"


def test_config_timeouts_and_retries_bound_a_silent_server_and_keyword_arguments_win(tmp_path):
    import socket
    import time

    from botocore.config import Config

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    host, port = silent.getsockname()
    kw = {
        "endpoint_url": f"http://{host}:{port}",
        "region_name": "us-east-1",
        "aws_access_key_id": "AKIDEXAMPLE",
        "aws_secret_access_key": "secret",
    }
    try:
        fast = Config(connect_timeout=0.5, read_timeout=1, retries={"max_attempts": 1})
        t = time.monotonic()
        with pytest.raises(s4db_rs.RemoteError) as e:
            S4DB("bucket", "p", local_dir=str(tmp_path / "a"), config=fast, **kw)
        assert time.monotonic() - t < 10
        assert f"{host}:{port}" in str(e.value)
        # botocore's defaults (60 s + 60 s) would wait two minutes; timeout= wins.
        slow = Config(read_timeout=60, retries={"max_attempts": 20})
        t = time.monotonic()
        with pytest.raises(s4db_rs.RemoteError):
            S4DB("bucket", "p", local_dir=str(tmp_path / "b"), config=slow, timeout=1.5, retries=1, **kw)
        assert time.monotonic() - t < 10
    finally:
        silent.close()


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"proxies": {"https": "http://proxy:3128"}}, TypeError, "proxies"),
        ({"s3": {"use_accelerate_endpoint": True}}, TypeError, "use_accelerate_endpoint"),
        ({"signature_version": "s3"}, ValueError, "signature_version"),
        ({"connect_timeout": "5"}, TypeError, "connect_timeout"),
        ({"read_timeout": 0}, ValueError, "read_timeout"),
        ({"region_name": 7}, TypeError, "region_name"),
    ],
    ids=lambda v: repr(v),
)
def test_a_config_option_s4db_cannot_honour_is_refused_before_anything_is_written(
    tmp_path, s3_server, prefix, options, error, match
):
    from botocore.config import Config

    with pytest.raises(error, match=match):
        S4DB(
            s3_server.bucket, prefix, local_dir=str(tmp_path / "x"), config=Config(**options),
            **s3_server.client_kwargs(),
        )
    assert not (tmp_path / "x").exists()


def test_rebuild_index_from_s3_brings_back_a_database_whose_index_was_lost(tmp_path, s3_server, prefix):
    import boto3

    kw = s3_server.client_kwargs()
    with S4DB(s3_server.bucket, prefix, local_dir=str(tmp_path / "a"), **kw) as db:
        db.put({"k1": "v1", "k2": "v2"})
        db.upload()
    boto3.client("s3", **kw).delete_object(Bucket=s3_server.bucket, Key=f"{prefix}/index.idx")

    # A new directory sees no database, and its upload does not bury the data.
    with S4DB(s3_server.bucket, prefix, local_dir=str(tmp_path / "b"), **kw) as db:
        assert db.keys() == []
        db.put({"new": "x"})
        with pytest.raises(compat.ConflictError, match="no index.idx"):
            db.upload()

    with S4DB(s3_server.bucket, prefix, local_dir=str(tmp_path / "c"), **kw) as db:
        report = db.rebuild_index(from_s3=True)
        assert (report.kind, report.keys) == ("RebuildReport", 2)
        assert db.get("k1") == "v1" and db.get("k2") == "v2"
        db.upload()
    reader = s4db_rs.open_remote(
        s3_server.url(prefix), access_key=s3_server.access_key, secret_key=s3_server.secret_key
    )
    assert dict(reader.items()) == {b"k1": b"v1", b"k2": b"v2"}
    reader.close()
