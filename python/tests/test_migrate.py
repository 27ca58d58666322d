"""Migration from databases written by the real Python s4db 0.8.0 and
0.10.0 (each installed from PyPI into its own virtual environment under
target/), in a bucket on the loopback S3 server and in a local directory."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import s4db_rs
from conftest import ROOT, S3Server

HERE = Path(__file__).resolve().parent


def python_with_s4db(version: str) -> Path:
    """A virtual environment with the Python s4db `version` (made once)."""
    venv = ROOT / "target" / f"py-s4db-{version}"
    python = venv / "bin" / "python"
    if not (venv / f".s4db-{version}").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"s4db=={version}"],
            check=True,
        )
        (venv / f".s4db-{version}").touch()
    return python


def decoded(expected: dict[str, list[str]]) -> dict[bytes, bytes]:
    return {
        k.encode(): (bytes.fromhex(v) if kind == "b" else v.encode()) for k, (kind, v) in expected.items()
    }


@pytest.fixture(params=["0.8.0", "0.10.0"])
def python_db(request, tmp_path, s3_server: S3Server, prefix):
    """A database written by the Python s4db: (url, local_dir, expected)."""
    python = python_with_s4db(request.param)
    local = tmp_path / "python-local"
    out = subprocess.run(
        [
            str(python),
            str(HERE / "write_with_python_s4db.py"),
            s3_server.endpoint,
            s3_server.bucket,
            s3_server.access_key,
            s3_server.secret_key,
            prefix,
            str(local),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    expected = json.loads(out.stdout)
    return s3_server.url(prefix), local, expected


def creds(s3: S3Server) -> dict[str, str]:
    return {"access_key": s3.access_key, "secret_key": s3.secret_key}


def contents(path: Path) -> dict[bytes, bytes]:
    with s4db_rs.open(path, "r") as db:
        assert db.verify().problems == []
        return dict(db.items())


def fingerprint(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


def test_a_bucket_migrates_to_its_last_commit_and_a_second_run_writes_nothing(
    tmp_path, s3_server, python_db
):
    url, _, expected = python_db
    r = s4db_rs.migrate(url, tmp_path / "dest", **creds(s3_server))
    want = decoded(expected["committed"])
    assert (r.keys, r.written, r.deleted, r.skipped) == (len(want), len(want), 0, [])
    assert contents(tmp_path / "dest") == want
    again = s4db_rs.migrate(url, tmp_path / "dest", **creds(s3_server))
    assert (again.written, again.unchanged, again.deleted) == (0, len(want), 0)


def test_a_local_directory_replays_to_every_write_and_is_not_modified(tmp_path, python_db):
    _, local, expected = python_db
    before = fingerprint(local)
    r = s4db_rs.migrate(str(local), tmp_path / "dest")
    want = decoded(expected["all"])
    assert b"local-only" in want and b"key00008" not in want
    assert r.keys == len(want) and r.skipped == []
    assert contents(tmp_path / "dest") == want
    assert fingerprint(local) == before


def test_an_interrupted_migration_is_finished_by_running_it_again(tmp_path, s3_server, python_db):
    url, _, expected = python_db
    dest = tmp_path / "dest"
    s4db_rs.migrate(url, dest, **creds(s3_server))
    # What an interrupted run leaves (some keys missing) plus later damage:
    # a changed value and a key the source does not have.
    with s4db_rs.open(dest) as db:
        db.delete_range(b"key01000", b"key02000")
        db[b"overwritten"] = b"stale"
        db[b"stray"] = b"x"
    r = s4db_rs.migrate(url, dest, **creds(s3_server))
    assert (r.written, r.deleted) == (1001, 1)
    assert contents(dest) == decoded(expected["committed"])


def test_a_killed_cli_migration_is_finished_by_running_it_again(tmp_path, s3_server, python_db):
    url, _, expected = python_db
    cli = ROOT / "target" / "debug" / "s4db"
    if not cli.exists():
        pytest.fail(f"{cli} is missing: cargo build (scripts/test.sh does)")
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID=s3_server.access_key,
        AWS_SECRET_ACCESS_KEY=s3_server.secret_key,
    )
    dest = tmp_path / "dest"
    args = [str(cli), "--dir", str(dest), "-q", "migrate", url]
    for delay in (0.02, 0.05, 0.1):
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    done = subprocess.run(args + ["--json"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["keys"] == len(expected["committed"])
    assert contents(dest) == decoded(expected["committed"])


def test_a_database_that_is_not_this_sources_migration_is_refused(tmp_path, s3_server, python_db):
    url, local, _ = python_db
    with s4db_rs.open(tmp_path / "other") as db:
        db[b"mine"] = b"keep"
    with pytest.raises(s4db_rs.InvalidArgumentError, match="not a migration"):
        s4db_rs.migrate(url, tmp_path / "other", **creds(s3_server))
    assert contents(tmp_path / "other") == {b"mine": b"keep"}
    s4db_rs.migrate(str(local), tmp_path / "dest")
    with pytest.raises(s4db_rs.InvalidArgumentError, match="is a migration of"):
        s4db_rs.migrate(url, tmp_path / "dest", **creds(s3_server))
    with pytest.raises(ValueError, match="mode"):
        s4db_rs.migrate(url, tmp_path / "x", mode="guess")  # type: ignore[arg-type]


def test_a_damaged_record_is_skipped_by_a_replay_and_an_error_through_the_index(tmp_path, s3_server, python_db):
    url, local, _ = python_db
    # Flip the flags byte of the second record (key00001, live) of the first data file.
    name = sorted(p.name for p in local.iterdir() if p.name.startswith("data_"))[0]
    data = bytearray((local / name).read_bytes())
    data[40] ^= 0xFF
    bucket_dir = tmp_path / "copy"
    bucket_dir.mkdir()
    for p in local.iterdir():
        (bucket_dir / p.name).write_bytes(bytes(data) if p.name == name else p.read_bytes())
    # A replay meets the damaged bytes: it skips the rest of that file and
    # reports it.
    r = s4db_rs.migrate(str(bucket_dir), tmp_path / "dest")
    assert [d.file for d in r.skipped] == [name]
    assert r.skipped[0].start <= 40
    # Through the directory's index.idx the damaged record is live: an error
    # naming the file.
    with pytest.raises(s4db_rs.CorruptionError, match=name):
        s4db_rs.migrate(str(bucket_dir), tmp_path / "dest2", mode="index")


def test_opening_a_python_s4db_bucket_directly_says_to_migrate_it(tmp_path, s3_server, python_db):
    url, _, _ = python_db
    with pytest.raises(s4db_rs.CorruptionError, match="migrate"):
        s4db_rs.open_remote(url, **creds(s3_server))
