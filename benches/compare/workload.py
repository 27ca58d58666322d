"""The comparison workload through the Python s4db (PyPI package `s4db`).

The same phases, data and random key sequence as `examples/workload.rs`
(read its header for the list); prints one JSON object on stdout, progress
on stderr. The S3 server comes from the standard AWS variables
(AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION).

    python workload.py --bucket BUCKET --prefix PREFIX/ [--records N] [--dir PATH]

Differences forced by the Python API, kept as small as it allows:
- Its open loads the index from S3 (it never reads a local index), so
  `open_s` is measured after the first upload, as on the Rust side.
- Its rebuild_index marks every replayed file for re-upload, so the
  database is reopened (untimed) after the rebuild; otherwise the next
  upload would re-send everything.
- Its compact requires an upload first and uploads the rewritten files
  itself, so `compact_s` and `compact_and_upload_s` are the same number.
- `index_bytes_per_key` is measured with tracemalloc in a child process
  (parsing the index once more), so tracing neither slows the timed open nor
  adds to this process's peak memory. It relies on two private modules of
  the package (`s4db._index`, `s4db._storage`), pinned by version.
"""

import subprocess
import sys
import time
from importlib.metadata import version

from s4db import S4DB

from compare_data import Keys, check, cli, data_fingerprint, emit, final_value, key_for, value_for


def index_bytes(bucket, prefix):
    """Heap bytes of the loaded index, traced in a child process.

    The child fetches index.idx first, then traces only its parsing into the
    in-memory index (the boto3 client's own memory is not counted)."""
    code = (
        "import sys, tracemalloc\n"
        "from s4db._index import Index\n"
        "from s4db._storage import S3Storage\n"
        "data = S3Storage(sys.argv[1], sys.argv[2]).download_bytes('index.idx')\n"
        "tracemalloc.start()\n"
        "index = Index.from_bytes(data)\n"
        "print(tracemalloc.get_traced_memory()[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code, bucket, prefix], check=True, capture_output=True, text=True)
    return int(out.stdout)


def run(a, n, local_dir):
    print(f"workload.py: {n} keys in {local_dir}, s3://{a.bucket}/{a.prefix}", file=sys.stderr)
    keys = [key_for(i) for i in range(n)]
    values = [value_for(i) for i in range(n)]
    db = S4DB(a.bucket, a.prefix, local_dir=local_dir)

    t = time.perf_counter()
    for start in range(0, n, 1000):
        db.put({keys[i]: values[i] for i in range(start, min(start + 1000, n))})
    db.flush()
    bulk_put_per_s = n / (time.perf_counter() - t)

    singles = min(n, 100_000)
    t = time.perf_counter()
    for i in range(singles):
        db.put({keys[i]: values[i]})
    db.flush()
    single_put_per_s = singles / (time.perf_counter() - t)

    gets = min(n, 200_000)
    rng = Keys()
    t = time.perf_counter()
    for _ in range(gets):
        i = rng.next_below(n)
        check("local get", i, db.get(keys[i]), values[i])
    local_get_per_s = gets / (time.perf_counter() - t)

    t = time.perf_counter()
    db.upload()
    upload_s = time.perf_counter() - t

    db.close()
    del db
    t = time.perf_counter()
    db = S4DB(a.bucket, a.prefix, local_dir=local_dir)
    open_s = time.perf_counter() - t
    index_bytes_per_key = index_bytes(a.bucket, a.prefix) / n

    t = time.perf_counter()
    db.rebuild_index()
    rebuild_index_s = time.perf_counter() - t
    db.close()
    del db
    db = S4DB(a.bucket, a.prefix, local_dir=local_dir)

    print("workload.py: overwrite 10%, delete 10%, upload, compact", file=sys.stderr)
    for start in range(0, n, 1000):
        rows = range(start, min(start + 1000, n))
        db.put({keys[i]: value_for(i + n) for i in rows if i % 10 == 0})
        db.delete([keys[i] for i in rows if i % 10 == 5])
    t = time.perf_counter()
    db.upload()
    upload_changes_s = time.perf_counter() - t

    t = time.perf_counter()
    db.compact()
    compact_s = time.perf_counter() - t
    db.close()
    del db

    print("workload.py: cold reader", file=sys.stderr)
    t = time.perf_counter()
    reader = S4DB(a.bucket, a.prefix)
    first = rng.next_below(n)
    check("cold get", first, reader.get(keys[first]), final_value(first, n))
    cold_open_and_first_get_s = time.perf_counter() - t

    remote_gets = min(n, 1000)
    t = time.perf_counter()
    for _ in range(remote_gets):
        i = rng.next_below(n)
        check("remote get", i, reader.get(keys[i]), final_value(i, n))
    remote_get_per_s = remote_gets / (time.perf_counter() - t)

    many = [rng.next_below(n) for _ in range(1000)]
    t = time.perf_counter()
    got = reader.get_many([keys[i] for i in many])
    get_many_1000_s = time.perf_counter() - t
    for i in many:
        check("get_many", i, got[keys[i]], final_value(i, n))

    emit(
        f"s4db (Python) {version('s4db')}",
        n,
        data_fingerprint(keys, values),
        bulk_put_per_s=bulk_put_per_s,
        single_put_per_s=single_put_per_s,
        local_get_per_s=local_get_per_s,
        open_s=open_s,
        rebuild_index_s=rebuild_index_s,
        compact_s=compact_s,
        compact_and_upload_s=compact_s,
        index_bytes_per_key=index_bytes_per_key,
        upload_s=upload_s,
        upload_changes_s=upload_changes_s,
        cold_open_and_first_get_s=cold_open_and_first_get_s,
        remote_get_per_s=remote_get_per_s,
        get_many_1000_s=get_many_1000_s,
    )


if __name__ == "__main__":
    cli(__doc__, run)
