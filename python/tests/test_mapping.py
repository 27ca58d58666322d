"""The dict-like handle: the mapping protocol, batches, scans, text mode."""

from collections.abc import MutableMapping

import pytest

import s4db_rs


@pytest.fixture
def db(tmp_path):
    with s4db_rs.open(tmp_path / "db") as handle:
        yield handle


def test_set_get_delete_contains_and_len_behave_like_a_dict(db):
    db[b"a"] = b"1"
    db["b"] = "2"
    assert db[b"a"] == b"1"
    assert db[b"b"] == b"2", "str keys and values are stored as UTF-8"
    assert db["a"] == b"1"
    assert "a" in db and b"b" in db and b"c" not in db
    assert len(db) == 2
    del db[b"a"]
    assert b"a" not in db
    assert len(db) == 1
    assert isinstance(db, MutableMapping)


def test_a_missing_key_raises_key_error_with_the_key(db):
    with pytest.raises(KeyError) as e:
        db[b"nope"]
    assert e.value.args == (b"nope",)
    with pytest.raises(KeyError):
        del db["nope"]
    assert db.get(b"nope") is None
    assert db.get(b"nope", 7) == 7


def test_bytes_like_keys_and_values_are_all_accepted(db):
    db[bytearray(b"k1")] = memoryview(b"v1")
    db[memoryview(b"k2")] = bytearray(b"v2")
    assert db[b"k1"] == b"v1"
    assert db[b"k2"] == b"v2"


def test_iteration_is_sorted_and_items_and_values_agree(db):
    data = {f"k{i:03}".encode(): f"v{i}".encode() for i in range(200)}
    db.put_many(data)
    assert list(db) == sorted(data)
    assert list(db.keys()) == sorted(data)
    assert list(db.items()) == sorted(data.items())
    assert list(db.values()) == [data[k] for k in sorted(data)]
    assert dict(db.items()) == data


def test_put_many_takes_a_mapping_or_pairs_and_checks_every_pair_before_writing(db):
    db.put_many([(b"x", b"1"), (b"y", b"2")])
    assert db[b"y"] == b"2"
    with pytest.raises(TypeError):
        db.put_many([(b"z", b"3"), (b"w", 4)])
    assert b"z" not in db, "nothing of a refused batch is written"
    with pytest.raises(ValueError):
        db.put_many([(b"only-a-key",)])


def test_get_many_returns_values_in_order_with_none_for_missing_keys(db):
    db.put_many({b"a": b"1", b"c": b"3"})
    assert db.get_many([b"c", b"b", "a"]) == [b"3", None, b"1"]
    assert db.get_many([]) == []


def test_delete_many_deletes_in_one_batch_and_ignores_missing_keys(db):
    db.put_many({b"a": b"1", b"b": b"2", b"c": b"3"})
    db.delete_many([b"a", b"c", b"zzz"])
    assert list(db) == [b"b"]


def test_scan_prefix_delete_prefix_and_delete_range(db):
    db.put_many({b"u:1": b"a", b"u:2": b"b", b"v:1": b"c", b"w:1": b"d"})
    assert list(db.scan_prefix(b"u:")) == [(b"u:1", b"a"), (b"u:2", b"b")]
    assert db.delete_prefix(b"u:") == 2
    assert db.delete_range(b"v", b"w") == 1
    assert list(db) == [b"w:1"]
    assert db.delete_range() == 1
    assert len(db) == 0


def test_text_mode_returns_str_and_refuses_bytes_that_are_not_utf8(tmp_path):
    with s4db_rs.open(tmp_path / "t", keys="str", values="str") as db:
        db["clé"] = "välue"
        db[b"raw"] = b"\xff\xfe"
        assert db["clé"] == "välue"
        assert list(db) == ["clé", "raw"]
        with pytest.raises(UnicodeDecodeError):
            db["raw"]


def test_an_items_iterator_keeps_its_view_while_writes_go_on(db):
    db.put_many({f"k{i}".encode(): b"old" for i in range(10)})
    it = db.items()
    first = next(it)
    for i in range(10):
        db[f"k{i}".encode()] = b"new"
    db[b"k99"] = b"added"
    rest = list(it)
    seen = [first] + rest
    assert [k for k, _ in seen] == sorted(f"k{i}".encode() for i in range(10))
    assert all(v == b"old" for _, v in seen)
