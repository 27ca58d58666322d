"""Sync with a remote (a file:// remote here; the Rust tests cover S3)."""

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
