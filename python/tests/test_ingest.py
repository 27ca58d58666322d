"""Staging shards and ingesting them, from Python (a file:// remote here;
the Rust tests cover S3 and the Dask example runs a real cluster)."""

import pytest

import s4db_rs


def test_shards_staged_then_ingested_read_back_as_their_union_later_winning(tmp_path):
    remote = (tmp_path / "remote").as_uri()
    for i, keys in enumerate([range(0, 50), range(40, 90)]):
        with s4db_rs.open(tmp_path / f"shard-{i}") as shard:
            shard.put_many({f"k{j:03}".encode(): f"{i}".encode() for j in keys})
            r = shard.stage(remote, f"part-{i}")
            assert r.kind == "StageReport" and r.keys == 50
    with pytest.raises(s4db_rs.NotFoundError):
        s4db_rs.open_remote(remote)  # staged is not committed
    r = s4db_rs.ingest(remote, ["part-0", "part-1"])
    assert (r.kind, r.shards, r.runs_added) == ("IngestReport", 2, 2)
    with s4db_rs.open_remote(remote) as reader:
        got = dict(reader.items())
        assert len(got) == 90
        assert got[b"k045"] == b"1" and got[b"k010"] == b"0"
        assert reader.verify().problems == []
    # The counts are upper bounds (keys 40..50 are in both shards) until
    # the runs are merged, which then uploads one run and the root.
    with s4db_rs.open(tmp_path / "merger", remote=remote) as merger:
        assert len(merger) == 100
        merger.merge_index()
        assert len(merger) == 90 and merger.stats().index_runs == 1
        assert merger.upload().runs_uploaded == 1
    with s4db_rs.open_remote(remote) as reader:
        assert len(reader) == 90 and reader[b"k045"] == b"1"
    with pytest.raises(s4db_rs.NotFoundError):
        s4db_rs.ingest(remote, ["part-0"])  # spent
    with pytest.raises(s4db_rs.InvalidArgumentError):
        s4db_rs.ingest(remote, ["bad/name"])
