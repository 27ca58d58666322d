"""Keys that expire, and database metadata, from Python."""

import time

import pytest

import s4db_rs


def test_a_key_put_with_a_ttl_reads_until_it_expires_then_is_absent_everywhere(tmp_path):
    with s4db_rs.open(tmp_path / "db") as db:
        db[b"keep"] = b"k"
        db.put_with_ttl(b"brief", b"b", 0.3)
        db.put_many({b"batch1": b"1", b"batch2": b"2"}, ttl=0.3)
        assert db[b"brief"] == b"b" and b"batch1" in db
        time.sleep(0.5)
        assert db.get(b"brief") is None
        assert b"brief" not in db
        with pytest.raises(KeyError):
            db[b"batch2"]
        assert list(db.keys()) == [b"keep"]
        assert dict(db.items()) == {b"keep": b"k"}
        assert db.get_many([b"brief", b"keep"]) == [None, b"k"]
        assert len(db) == 4  # counted until a compaction drops them
        assert db.compact(full=True).records_expired == 3
        assert len(db) == 1


def test_a_bad_ttl_is_a_value_error_and_writes_nothing(tmp_path):
    with s4db_rs.open(tmp_path / "db") as db:
        for ttl in (0, -1.0, float("nan"), float("inf")):
            with pytest.raises(ValueError):
                db.put_with_ttl(b"k", b"v", ttl)
            with pytest.raises(ValueError):
                db.put_many({b"k": b"v"}, ttl=ttl)
        assert len(db) == 0


def test_metadata_is_committed_published_and_read_by_a_remote_reader(tmp_path):
    remote = (tmp_path / "remote").as_uri()
    with s4db_rs.open(tmp_path / "a", remote=remote) as db:
        db[b"k"] = b"v"
        db.set_metadata("schema", "v3")
        db.update_metadata({"version": b"\x00\x01", "tmp": b"x"})
        db.update_metadata({"tmp": None})
        db.remove_metadata("never")
        assert db.metadata() == {"schema": b"v3", "version": b"\x00\x01"}
        db.upload()
    with s4db_rs.open(tmp_path / "a") as db:
        assert db.metadata()["schema"] == b"v3"
    with s4db_rs.open_remote(remote) as reader:
        assert reader.metadata() == {"schema": b"v3", "version": b"\x00\x01"}
        with pytest.raises(s4db_rs.ReadOnlyError):
            reader.set_metadata("x", b"y")


def test_bad_metadata_raises_a_clean_exception_and_changes_nothing(tmp_path):
    with s4db_rs.open(tmp_path / "db") as db:
        db.set_metadata("a", b"1")
        with pytest.raises(TypeError):
            db.set_metadata(b"bytes name", b"v")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            db.set_metadata("n", 5)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            db.update_metadata([("a", b"2")])  # type: ignore[arg-type]
        with pytest.raises(s4db_rs.InvalidArgumentError):
            db.set_metadata("big", b"x" * 70_000)
        with pytest.raises(s4db_rs.InvalidArgumentError):
            db.set_metadata("", b"v")
        assert db.metadata() == {"a": b"1"}
    with pytest.raises(s4db_rs.ClosedError):
        db.metadata()
