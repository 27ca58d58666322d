"""The package's example runs as README says, against the loopback S3 server
and its public (unsigned) endpoint."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT, S3Server


def test_the_bulk_load_example_uploads_and_reads_back_from_a_public_url(tmp_path, s3_server: S3Server, prefix):
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID=s3_server.access_key,
        AWS_SECRET_ACCESS_KEY=s3_server.secret_key,
    )
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
        env=env,
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
