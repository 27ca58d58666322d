"""Bulk-load a database, upload it, and read it back from a public URL with
no local copy, through s4db_rs.

    python python/examples/bulk_load_and_read.py                  # a file:// remote in a temporary directory
    python python/examples/bulk_load_and_read.py --records 1000000 \\
        --remote s3://my-bucket/products \\
        --public https://my-bucket.s3.amazonaws.com/products   # S3: credentials from the AWS_* variables

--remote is where the upload goes (s3://BUCKET/PREFIX[?endpoint=…], or a
path); --public is a URL that serves the same objects to anyone (the
bucket's public https:// address or a CDN in front of it); without it the
example reads back through --remote.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import s4db_rs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--remote", help="where to upload (default: a temporary directory)")
    p.add_argument("--public", help="a public URL of the same objects, to read back from")
    p.add_argument("--dir", help="the local database directory (default: a temporary one)")
    a = p.parse_args()
    if a.records < 1:
        p.error("--records must be at least 1")
    scratch = Path(tempfile.mkdtemp(prefix="s4db-example-"))
    remote: str = a.remote or (scratch / "remote").as_uri()
    local = Path(a.dir) if a.dir else scratch / "db"

    t = time.perf_counter()
    with s4db_rs.open(local, "c", remote=remote) as db:
        for start in range(0, a.records, 10_000):
            end = min(start + 10_000, a.records)
            db.put_many({f"product:{i:08d}": f'{{"id": {i}, "price": {i % 997}}}' for i in range(start, end)})
        loaded = time.perf_counter() - t
        up = db.upload()
    print(f"loaded {a.records} records in {loaded:.2f} s; uploaded {up.segments_uploaded} segment(s), {up.segment_bytes + up.index_bytes} bytes")

    with s4db_rs.open_remote(a.public or remote, keys="str", values="str") as reader:
        probe = [f"product:{i:08d}" for i in (0, a.records // 2, a.records - 1)]
        t = time.perf_counter()
        values = reader.get_many(probe)
        took = time.perf_counter() - t
        for key, value in zip(probe, values):
            print(f"{key} = {value}")
        print(f"{len(reader)} keys at {a.public or remote}; {len(probe)} cold gets in {took * 1000:.1f} ms")


if __name__ == "__main__":
    main()
