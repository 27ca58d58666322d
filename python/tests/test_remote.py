"""Sync with a remote (a file:// remote here; the Rust tests cover S3)."""

import os

import pytest

import s4db_rs


def test_upload_open_remote_and_download_round_trip(tmp_path):
    remote = (tmp_path / "remote").as_uri()
    with s4db_rs.open(tmp_path / "a", remote=remote) as db:
        db.put_many({f"k{i}".encode(): f"v{i}".encode() for i in range(100)})
        up = db.upload()
        assert up.kind == "UploadReport" and up.segments_uploaded >= 1
    with s4db_rs.open_remote(remote) as reader:
        assert len(reader) == 100
        assert reader[b"k42"] == b"v42"
        assert reader.get_many([b"k1", b"missing"]) == [b"v1", None]
        assert reader.refresh() is False
        with pytest.raises(s4db_rs.ReadOnlyError):
            reader[b"k"] = b"v"
    with s4db_rs.open(tmp_path / "b", remote=remote) as copy:
        down = copy.download()
        assert down.keys == 100
        assert copy[b"k99"] == b"v99"


def test_restore_from_remote_brings_back_a_lost_index_and_refuses_where_there_is_nothing_to_restore(tmp_path):
    remote = (tmp_path / "remote").as_uri()
    with s4db_rs.open(tmp_path / "a", remote=remote) as db:
        db.put_many({f"k{i}".encode(): b"v" for i in range(10)})
        db.upload()
        with pytest.raises(ValueError, match="download"):
            db.restore_from_remote()
    (tmp_path / "remote" / "index.idx").unlink()
    with s4db_rs.open(tmp_path / "b", remote=remote) as db:
        r = db.restore_from_remote()
        assert (r.kind, r.segments_downloaded, r.rebuild.kind, r.rebuild.keys) == (
            "RestoreReport", 1, "RebuildReport", 10
        )
        assert db[b"k3"] == b"v"
        assert (db.changes().restored, db.changes().puts) == (True, 0)
        assert db.upload().segments_uploaded == 0
        assert db.changes().restored is False
    with s4db_rs.open(tmp_path / "c", remote=(tmp_path / "empty").as_uri()) as db:
        with pytest.raises(s4db_rs.NotFoundError):
            db.restore_from_remote()
    with s4db_rs.open_remote(remote) as reader:
        assert len(reader) == 10


def test_a_second_writer_conflicts_and_rebase_resolves_it(tmp_path):
    remote = (tmp_path / "remote").as_uri()
    a = s4db_rs.open(tmp_path / "a", remote=remote)
    b = s4db_rs.open(tmp_path / "b", remote=remote)
    a[b"from-a"] = b"1"
    a.upload()
    b[b"from-b"] = b"2"
    with pytest.raises(s4db_rs.ConflictError):
        b.upload()
    assert b.upload(rebase=True).rebased == 1
    with s4db_rs.open_remote(remote) as reader:
        assert dict(reader.items()) == {b"from-a": b"1", b"from-b": b"2"}
    assert a.gc(grace=0).kind == "GcReport"
    a.close()
    b.close()


def test_a_remote_with_no_database_raises_not_found_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(s4db_rs.NotFoundError):
        s4db_rs.open_remote((tmp_path / "empty").as_uri())
    with pytest.raises(s4db_rs.InvalidArgumentError):
        s4db_rs.open_remote("ftp://example.invalid/x")


def test_changes_lists_unsynced_writes_and_discard_drops_them(tmp_path):
    remote = (tmp_path / "remote").as_uri()
    with s4db_rs.open(tmp_path / "a", remote=remote) as db:
        db.put_many({b"keep": b"1", b"drop": b"2", b"gone": b"3"})
        db.upload()
        db[b"keep"] = b"10"
        db[b"drop"] = b"20"
        db[b"new"] = b"abc"
        del db[b"gone"]
        c = db.changes()
        assert (c.puts, c.deletes, c.compacted) == (3, 1, False)
        assert c.changes == [
            (b"drop", "put", 2),
            (b"gone", "delete", None),
            (b"keep", "put", 2),
            (b"new", "put", 3),
        ]
        r = db.discard([b"drop", b"gone"])
        assert r.keys_discarded == 2
        assert db[b"drop"] == b"2" and db[b"gone"] == b"3" and db[b"keep"] == b"10"
        assert db.discard().keys_discarded == 2
        assert db.changes().changes == []
        assert dict(db.items()) == {b"keep": b"1", b"drop": b"2", b"gone": b"3"}


def test_copy_remote_copies_a_commit_and_delete_remote_removes_every_object(tmp_path):
    src = (tmp_path / "src").as_uri()
    dst = (tmp_path / "dst").as_uri()
    with s4db_rs.open(tmp_path / "a", remote=src) as db:
        db.put_many({f"k{i}".encode(): b"v" for i in range(50)})
        db.upload()
        copied = db.copy_remote(dst)
        assert copied.kind == "CopyRemoteReport" and copied.keys == 50
        assert db.copy_remote(dst).segments_copied == 0  # a second run copies nothing new
        removed = db.delete_remote()
        assert removed.had_root and removed.objects_deleted >= 2
    # Only the file store's own lock file (not an object) stays.
    assert [p.name for p in (tmp_path / "src").rglob("*")] == [".s4db-remote.lock"]
    with s4db_rs.open_remote(dst) as copy:
        assert len(copy) == 50 and copy[b"k7"] == b"v"
    with pytest.raises(s4db_rs.NotFoundError):
        s4db_rs.open_remote(src)


def test_an_in_memory_database_works_like_a_local_one_and_uploads(tmp_path):
    remote = (tmp_path / "remote").as_uri()
    def ours() -> set[str]:
        if not os.path.isdir("/dev/shm"):
            return set()
        return {n for n in os.listdir("/dev/shm") if n.startswith("s4db-memory-")}

    before = ours()
    with s4db_rs.memory(remote=remote, values="str") as db:
        db["a"] = "1"
        db.put_many({"b": "2", "c": "3"})
        del db["c"]
        assert dict(db.items()) == {b"a": "1", b"b": "2"}
        assert db.compact(full=True).records_written == 2
        assert db.upload().segments_uploaded >= 1
    assert ours() == before, "closing removes the RAM directory"
    with s4db_rs.open_remote(remote) as reader:
        assert reader[b"b"] == b"2"
    with s4db_rs.memory() as empty:
        assert len(empty) == 0
    with pytest.raises(TypeError):
        s4db_rs.memory(flag="r")  # type: ignore[call-arg]


def test_open_remote_gives_up_after_timeout_on_a_server_that_never_answers():
    import socket
    import time

    # Connections complete in the kernel's backlog; nothing ever answers.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    host, port = silent.getsockname()
    try:
        t = time.monotonic()
        with pytest.raises(s4db_rs.RemoteError) as e:
            s4db_rs.open_remote(f"http://{host}:{port}/db", timeout=1.5, retries=1)
        took = time.monotonic() - t
    finally:
        silent.close()
    assert took < 10, took
    assert f"{host}:{port}" in str(e.value)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"timeout": 0}, ValueError),
        ({"timeout": -1}, ValueError),
        ({"timeout": float("nan")}, ValueError),
        ({"timeout": float("inf")}, ValueError),
        ({"timeout": "3"}, TypeError),
        ({"retries": -1}, ValueError),
        ({"retries": 2**40}, ValueError),
        ({"retries": 2**80}, ValueError),
        ({"retries": 1.5}, TypeError),
        ({"retries": "2"}, TypeError),
    ],
    ids=lambda v: repr(v),
)
def test_a_bad_timeout_or_retries_is_refused_before_anything_opens(tmp_path, kwargs, error):
    remote = (tmp_path / "remote").as_uri()
    with pytest.raises(error):
        s4db_rs.open(tmp_path / "db", remote=remote, **kwargs)
    assert not (tmp_path / "db").exists()
    with pytest.raises(error):
        s4db_rs.open_remote(remote, **kwargs)
    with pytest.raises(error):
        s4db_rs.memory(**kwargs)


def test_timeout_and_retries_leave_a_working_handle(tmp_path):
    remote = (tmp_path / "remote").as_uri()
    with s4db_rs.open(tmp_path / "a", remote=remote, timeout=30, retries=0) as db:
        db[b"k"] = b"v"
        db.upload()
    reader = s4db_rs.open_remote(remote, timeout=2.5, retries=3)
    assert reader[b"k"] == b"v"
    reader.close()


def test_every_call_that_names_a_remote_takes_timeout_and_retries(tmp_path):
    remote = (tmp_path / "remote").as_uri()
    with s4db_rs.open(tmp_path / "a", remote=remote) as db:
        db[b"k"] = b"v"
        db.upload()
        copy = (tmp_path / "copy").as_uri()
        db.copy_remote(copy, timeout=30, retries=2)
        with pytest.raises(ValueError):
            db.copy_remote(copy, timeout=0)
        with pytest.raises(TypeError):
            db.stage(copy, "shard", retries="many")
    reader = s4db_rs.open_remote(copy, timeout=30)
    assert reader[b"k"] == b"v"
    reader.close()
    with pytest.raises(ValueError):
        s4db_rs.ingest(copy, ["shard"], retries=-1)
    with pytest.raises(ValueError):
        s4db_rs.migrate(copy, tmp_path / "m", timeout=float("nan"))


def test_offline_a_directory_reading_through_its_remote_raises_on_remote_error_for_the_remotes_keys(tmp_path):
    remote = (tmp_path / "remote").as_uri()
    with s4db_rs.open(tmp_path / "a", remote=remote) as db:
        db[b"k1"] = b"v1"
        db.upload()
    # Opened empty with its remote, it fetches only the index and reads through.
    with s4db_rs.open(tmp_path / "c", remote=remote) as db:
        db[b"kc"] = b"vc"
        assert db[b"k1"] == b"v1"
    with s4db_rs.open(tmp_path / "c") as db:
        assert db[b"kc"] == b"vc"
        with pytest.raises(s4db_rs.OnRemoteError, match="on the remote") as raised:
            db[b"k1"]
        assert isinstance(raised.value, LookupError) and not isinstance(raised.value, s4db_rs.CorruptionError)
