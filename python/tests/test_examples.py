"""The package's example runs as README says, against the loopback S3 server
and its public (unsigned) endpoint."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT, S3Server


def aws_env(s3_server: S3Server) -> dict[str, str]:
    """This environment, with the loopback server's credentials."""
    return dict(
        os.environ,
        AWS_ACCESS_KEY_ID=s3_server.access_key,
        AWS_SECRET_ACCESS_KEY=s3_server.secret_key,
    )


def test_the_bulk_load_example_uploads_and_reads_back_from_a_public_url(tmp_path, s3_server: S3Server, prefix):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "python/examples/bulk_load_and_read.py"),
            "--records",
            "5000",
            "--remote",
            s3_server.url(prefix),
            "--public",
            s3_server.public_url(prefix),
            "--dir",
            str(tmp_path / "db"),
        ],
        env=aws_env(s3_server),
        capture_output=True,
        text=True,
        check=True,
    )
    assert "loaded 5000 records" in out.stdout
    assert 'product:00002500 = {"id": 2500, "price": 506}' in out.stdout
    assert "5000 keys at http://" in out.stdout


def test_the_bulk_load_example_runs_with_no_arguments_on_a_local_remote():
    out = subprocess.run(
        [sys.executable, str(ROOT / "python/examples/bulk_load_and_read.py"), "--records", "100"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert 'product:00000099 = {"id": 99, "price": 99}' in out.stdout


def test_the_dask_example_builds_shards_on_2_workers_and_ingests_them_on_s3(tmp_path, s3_server: S3Server, prefix):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples/dask_build.py"),
            "--records",
            "20000",
            "--partitions",
            "6",
            "--workers",
            "2",
            "--remote",
            s3_server.url(prefix),
        ],
        env=aws_env(s3_server),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert "built and staged 6 shards, 20000 records" in out.stdout
    assert "ingested 6 shards" in out.stdout
    assert 'product:000000010000 = {"id": 10000, "price": 0}' in out.stdout
    assert "20000 keys at s3://" in out.stdout
    # A cold public reader sees the whole build, and it verifies.
    import s4db_rs

    with s4db_rs.open_remote(s3_server.public_url(prefix)) as reader:
        assert len(reader) == 20000
        assert reader[b"product:000000019999"] == b'{"id": 19999, "price": 81}'
        assert reader.verify().problems == []
