"""Shared fixtures: a real S3 server on loopback (examples/s3_test_server.rs,
s3s-fs with SigV4 checked), started once per session."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    public_endpoint: str

    def url(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}?endpoint={self.endpoint}&region=us-east-1"

    def public_url(self, prefix: str) -> str:
        """The same objects through unsigned GETs (a public bucket)."""
        return f"{self.public_endpoint}/{self.bucket}/{prefix}"

    def client_kwargs(self) -> dict[str, str]:
        """The boto3-style keyword arguments S4DB takes."""
        return {
            "endpoint_url": self.endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
        }


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    binary = Path(os.environ.get("S4DB_TEST_S3_SERVER", ROOT / "target/debug/examples/s3_test_server"))
    if not binary.exists():
        pytest.fail(f"{binary} is missing: build it with `cargo build --example s3_test_server` (scripts/test.sh does)")
    proc = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        endpoint, bucket, access, secret, public = proc.stdout.readline().split()
        yield S3Server(endpoint, bucket, access, secret, public)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def prefix() -> str:
    """A prefix no other test uses."""
    return f"t-{uuid.uuid4().hex[:12]}"
