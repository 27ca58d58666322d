"""Opening flags, closing, locking, reports and maintenance."""

import pytest

import s4db_rs


def test_flags_r_w_c_and_n(tmp_path):
    path = tmp_path / "db"
    with pytest.raises(s4db_rs.NotFoundError):
        s4db_rs.open(path, "w")
    with pytest.raises(s4db_rs.NotFoundError):
        s4db_rs.open(path, "r")
    with s4db_rs.open(path, "c") as db:
        db[b"k"] = b"v"
    with s4db_rs.open(path, "r") as db:
        assert db[b"k"] == b"v"
        with pytest.raises(s4db_rs.ReadOnlyError):
            db[b"k"] = b"w"
    with s4db_rs.open(path, "w") as db:
        db[b"k2"] = b"v2"
    with s4db_rs.open(path, "n") as db:
        assert len(db) == 0
        db[b"fresh"] = b"1"
    with s4db_rs.open(path) as db:
        assert list(db) == [b"fresh"]


def test_bad_options_raise_value_or_type_errors(tmp_path):
    with pytest.raises(ValueError):
        s4db_rs.open(tmp_path / "x", "q")
    with pytest.raises(ValueError):
        s4db_rs.open(tmp_path / "x", "n", remote=str(tmp_path / "r"))
    with pytest.raises(ValueError):
        s4db_rs.open(tmp_path / "x", values="text")
    with pytest.raises(ValueError):
        s4db_rs.open(tmp_path / "x", sync="sometimes")
    with pytest.raises(ValueError):
        s4db_rs.open(tmp_path / "x", lock_wait=-1)
    with pytest.raises(ValueError):
        s4db_rs.open(tmp_path / "x", access_key="only-one")
    with pytest.raises(TypeError):
        s4db_rs.open(tmp_path / "x", max_segment_size="big")
    with pytest.raises(s4db_rs.InvalidArgumentError):
        s4db_rs.open(tmp_path / "x", max_segment_size=1)


def test_a_closed_handle_raises_closed_error_and_closing_twice_is_fine(tmp_path):
    db = s4db_rs.open(tmp_path / "db")
    db[b"k"] = b"v"
    db.close()
    db.close()
    with pytest.raises(s4db_rs.ClosedError):
        db[b"k"]
    with pytest.raises(s4db_rs.ClosedError):
        db[b"k"] = b"v"
    with s4db_rs.open(tmp_path / "db") as again:
        assert again[b"k"] == b"v", "close flushed the write"


def test_a_second_writer_gets_locked_error(tmp_path):
    with s4db_rs.open(tmp_path / "db"):
        with pytest.raises(s4db_rs.LockedError):
            s4db_rs.open(tmp_path / "db", lock_wait=0)
        with s4db_rs.open(tmp_path / "db", "r") as reader:
            assert len(reader) == 0


def test_reports_have_the_rust_fields_and_compare_by_value(tmp_path):
    with s4db_rs.open(tmp_path / "db", max_segment_size=4096) as db:
        for i in range(300):
            db[f"k{i:04}".encode()] = b"x" * 50
        for i in range(300):
            db[f"k{i:04}".encode()] = b"y" * 50
        stats = db.stats()
        assert stats.kind == "Stats"
        assert stats.keys == 300
        assert stats.segments > 1
        for bad in (0, 101, 1000, -1):
            with pytest.raises(s4db_rs.InvalidArgumentError):
                db.compact(min_dead_percent=bad)
        compaction = db.compact(full=True)
        assert compaction.segments_after < compaction.segments_before
        assert compaction.segments_rewritten == compaction.segments_before
        assert compaction.records_written == 300
        # Nothing is dead now: a selective pass leaves every segment alone.
        again = db.compact()
        assert (again.segments_rewritten, again.records_written) == (0, 0)
        verify = db.verify()
        assert verify.problems == []
        assert verify.keys == 300
        assert verify == db.verify()
        assert verify != stats
        assert verify._asdict()["keys"] == 300
        assert repr(verify).startswith("VerifyReport(segments=")
        with pytest.raises(AttributeError):
            verify.no_such_field
        rebuilt = db.rebuild_index()
        assert rebuilt.keys == 300 and rebuilt.skipped == [] and rebuilt.torn_tail is None


def test_a_damaged_index_raises_corruption_error(tmp_path):
    with s4db_rs.open(tmp_path / "db") as db:
        db[b"k"] = b"v"
        db.checkpoint()
    index = tmp_path / "db" / "index.idx"
    data = bytearray(index.read_bytes())
    data[10] ^= 0xFF
    index.write_bytes(bytes(data))
    with pytest.raises(s4db_rs.CorruptionError):
        s4db_rs.open(tmp_path / "db")
