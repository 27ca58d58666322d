"""Build one s4db database on a Dask cluster, then publish it in one commit.

Each partition of the data set becomes a shard: a Dask worker builds it in a
temporary directory of its own with the Python package (s4db_rs), stages it
under the database's prefix (its segments, index runs and a manifest; readers
see nothing yet), and returns the stage's name. The driver then ingests every
stage in one conditional write of index.idx: readers see all shards or none
(FORMAT.md §10.11). Dask schedules the workers; s4db provides the two storage
steps.

    # A local cluster of 2 worker processes and a local remote:
    python examples/dask_build.py --records 100000 --partitions 8

    # A real cluster and a real bucket (credentials from the AWS variables,
    # which the workers need too):
    python examples/dask_build.py --scheduler tcp://scheduler:8786 \\
        --remote s3://my-bucket/products --records 1000000000 --partitions 256

Every record is `product:{i:012}` = a small JSON document. The data set is
synthetic so that the example needs nothing else; a real job maps its own
partitions (a Parquet directory, a database table) the same way.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterable

import dask.bag as db
from dask import delayed
from dask.distributed import Client, LocalCluster

import s4db_rs


def record(i: int) -> tuple[bytes, bytes]:
    key = f"product:{i:012}".encode()
    value = f'{{"id": {i}, "price": {(i * 7919) % 1000}}}'.encode()
    return key, value


def stage_partition(records: Iterable[tuple[bytes, bytes]], remote: str, name: str) -> dict[str, int]:
    """Runs on a worker: builds this partition's shard and stages it."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="s4db-shard-") as tmp:
        with s4db_rs.open(os.path.join(tmp, "shard")) as shard:
            batch: list[tuple[bytes, bytes]] = []
            for kv in records:
                batch.append(kv)
                if len(batch) == 10_000:
                    shard.put_many(batch)
                    batch.clear()
            if batch:
                shard.put_many(batch)
            built = time.perf_counter()
            r = shard.stage(remote, name)
    return {
        "keys": r.keys,
        "bytes": r.segment_bytes + r.run_bytes,
        "build_ms": int((built - started) * 1000),
        "stage_ms": int((time.perf_counter() - built) * 1000),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--remote", help="the database's URL (default: a temporary file:// remote)")
    p.add_argument("--scheduler", help="a Dask scheduler's address (default: a local cluster)")
    p.add_argument("--workers", type=int, default=2, help="workers of the local cluster (default 2)")
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--partitions", type=int, default=8)
    args = p.parse_args()

    keep = None
    remote = args.remote
    if remote is None:
        keep = tempfile.TemporaryDirectory(prefix="s4db-remote-")
        remote = f"file://{keep.name}"

    if args.scheduler:
        client = Client(args.scheduler)
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)

    started = time.perf_counter()
    parts = db.range(args.records, npartitions=args.partitions).map(record).to_delayed()
    names = [f"part-{i:05}" for i in range(len(parts))]
    tasks = [delayed(stage_partition)(part, remote, name) for part, name in zip(parts, names)]
    staged = client.gather(client.compute(tasks))
    built = time.perf_counter()

    report = s4db_rs.ingest(remote, names)
    done = time.perf_counter()

    keys = sum(s["keys"] for s in staged)
    print(f"built and staged {len(staged)} shards, {keys} records, in {built - started:.2f} s")
    per_worker = [s["keys"] / max(s["build_ms"] + s["stage_ms"], 1) * 1000 for s in staged]
    print(f"per shard: {min(per_worker):,.0f} to {max(per_worker):,.0f} records/s (build and stage)")
    print(
        f"ingested {report.shards} shards in {(done - built) * 1000:.1f} ms: "
        f"index.idx {report.index_bytes} bytes, {report.runs_added} runs, {report.segments_added} segments"
    )
    with s4db_rs.open_remote(remote) as reader:
        last = args.records - 1
        for i in (0, args.records // 2, last):
            key, _ = record(i)
            print(f"{key.decode()} = {reader[key].decode()}")
        print(f"{len(reader)} keys at {remote}")
    client.close()
    if keep is not None:
        keep.cleanup()


if __name__ == "__main__":
    main()
