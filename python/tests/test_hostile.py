"""Hostile input from Python: wrong types, huge keys, many threads. Every
failure is an ordinary exception (a Rust panic would surface as
pyo3_runtime.PanicException, which is not an Exception)."""

import random
import sys
import threading
import time

import pytest

import s4db_rs


@pytest.fixture
def db(tmp_path):
    with s4db_rs.open(tmp_path / "db") as handle:
        yield handle


WRONG = [None, 1, 1.5, [b"k"], {"k": 1}, object(), (b"k",), True]


@pytest.mark.parametrize("bad", WRONG, ids=lambda v: type(v).__name__)
def test_a_key_or_value_of_the_wrong_type_is_a_type_error(db, bad):
    with pytest.raises(TypeError):
        db[bad]
    with pytest.raises(TypeError):
        db[bad] = b"v"
    with pytest.raises(TypeError):
        db[b"k"] = bad
    with pytest.raises(TypeError):
        bad in db
    with pytest.raises(TypeError):
        db.get_many([b"ok", bad])
    with pytest.raises(TypeError):
        db.delete_many([bad])
    assert len(db) == 0


def test_a_key_over_the_limit_is_an_invalid_argument_and_writes_nothing(db):
    with pytest.raises(s4db_rs.InvalidArgumentError):
        db[b"k" * 70_000] = b"v"
    with pytest.raises(ValueError):
        db.put_many({b"fine": b"1", b"k" * 70_000: b"v"})
    assert len(db) == 0


def test_random_calls_with_random_arguments_raise_only_ordinary_exceptions(db):
    rng = random.Random(7)
    pool = WRONG + [b"", b"k", "k", b"\xff" * 3, bytearray(b"x"), "é" * 100, b"k" * 70_000]
    calls = [
        lambda a, b: db.__setitem__(a, b),
        lambda a, b: db.__getitem__(a),
        lambda a, b: db.__delitem__(a),
        lambda a, b: db.get(a, b),
        lambda a, b: db.put_many(a),
        lambda a, b: db.put_many([(a, b)]),
        lambda a, b: db.get_many(a),
        lambda a, b: db.delete_many(a),
        lambda a, b: list(db.scan_prefix(a)),
        lambda a, b: db.delete_range(a, b),
        lambda a, b: db.delete_prefix(a),
        lambda a, b: db.gc(a),
        lambda a, b: db.upload(a, b),
    ]
    for _ in range(2000):
        call = rng.choice(calls)
        try:
            call(rng.choice(pool), rng.choice(pool))
        except Exception:
            pass  # anything but a BaseException-only panic is fine
    assert db.verify().problems == []


def test_threads_share_one_handle(db):
    def worker(t):
        for i in range(500):
            key = f"t{t}:{i}".encode()
            db[key] = key * 2
            assert db[key] == key * 2

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(db) == 8 * 500
    assert db[b"t7:499"] == b"t7:499" * 2


def test_closing_while_other_threads_read_raises_closed_error_in_them(tmp_path):
    db = s4db_rs.open(tmp_path / "db")
    db.put_many({f"k{i}".encode(): b"v" for i in range(1000)})
    errors = []

    def reader():
        try:
            while True:
                for k in (f"k{i}".encode() for i in range(1000)):
                    db.get(k)
        except s4db_rs.ClosedError as e:
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for th in threads:
        th.start()
    db.close()
    for th in threads:
        th.join(timeout=30)
    assert len(errors) == 4


def test_the_gil_is_released_while_the_engine_works(tmp_path):
    # With a long switch interval, the counting thread gets the GIL only when
    # the main thread gives it up of its own accord: during compact(), if the
    # binding releases it. With the GIL held, the count could not move.
    with s4db_rs.open(tmp_path / "db", max_segment_size=1 << 20) as db:
        for _ in range(3):
            db.put_many({f"k{i:06}".encode(): b"v" * 100 for i in range(50_000)})
        count = [0]
        stop = threading.Event()

        def counter():
            while not stop.is_set():
                count[0] += 1
                time.sleep(0)  # gives the GIL back at once

        interval = sys.getswitchinterval()
        sys.setswitchinterval(5.0)
        th = threading.Thread(target=counter)
        th.start()
        try:
            time.sleep(0.01)
            before = count[0]
            db.compact()
            during = count[0] - before
        finally:
            stop.set()
            th.join()
            sys.setswitchinterval(interval)
        assert during > 10, f"the counting thread ran {during} times during compact()"


def test_migrate_rejects_bad_arguments_cleanly(tmp_path):
    with pytest.raises(TypeError):
        s4db_rs.migrate(123, tmp_path / "d")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        s4db_rs.migrate("/x", None)  # type: ignore[arg-type]
    with pytest.raises(s4db_rs.InvalidArgumentError):
        s4db_rs.migrate("ftp://nowhere/x", tmp_path / "d")
    (tmp_path / "empty").mkdir()
    with pytest.raises(s4db_rs.NotFoundError, match="data files"):
        s4db_rs.migrate(str(tmp_path / "empty"), tmp_path / "d")
    with pytest.raises(s4db_rs.NotFoundError, match="index.idx"):
        s4db_rs.migrate(str(tmp_path / "empty"), tmp_path / "d", mode="index")
