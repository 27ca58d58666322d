"""The comparison workload through s4db_rs, this repository's Python package.

The same phases, data and random key sequence as `examples/workload.rs` and
`workload.py` (read the Rust example's header for the list), driven from
Python; prints one JSON object on stdout, progress on stderr. The S3 server
comes from the standard AWS variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION), as for the other two.

    python workload_rs.py --bucket BUCKET --prefix PREFIX/ [--records N] [--dir PATH]

Each phase makes the same engine calls as the Rust workload, one Python call
each: `put_many` per batch of 1,000, `db[k] = v` per single put, `db[k]` per
get, `get_many` for the 1,000 remote keys.
"""

import sys
import time

import s4db_rs

from compare_data import Keys, check, cli, data_fingerprint, emit, final_value, key_for, value_for


def run(a, n, local_dir):
    remote = f"s3://{a.bucket}/{a.prefix}"
    print(f"workload_rs.py: {n} keys in {local_dir}, {remote}", file=sys.stderr)
    keys = [key_for(i).encode() for i in range(n)]
    values = [value_for(i) for i in range(n)]
    db = s4db_rs.open(local_dir, remote=remote)

    t = time.perf_counter()
    for start in range(0, n, 1000):
        end = min(start + 1000, n)
        db.put_many(zip(keys[start:end], values[start:end]))
    db.flush()
    bulk_put_per_s = n / (time.perf_counter() - t)

    singles = min(n, 100_000)
    t = time.perf_counter()
    for i in range(singles):
        db[keys[i]] = values[i]
    db.flush()
    single_put_per_s = singles / (time.perf_counter() - t)

    gets = min(n, 200_000)
    rng = Keys()
    t = time.perf_counter()
    for _ in range(gets):
        i = rng.next_below(n)
        check("local get", i, db[keys[i]], values[i])
    local_get_per_s = gets / (time.perf_counter() - t)

    t = time.perf_counter()
    db.upload()
    upload_s = time.perf_counter() - t

    db.close()
    del db
    t = time.perf_counter()
    db = s4db_rs.open(local_dir, remote=remote)
    open_s = time.perf_counter() - t
    # Heap plus mapped: the mapped index.idx is resident once gets touch it.
    stats = db.stats()
    index_bytes_per_key = (stats.index_memory_bytes + stats.index_mapped_bytes) / n

    t = time.perf_counter()
    db.rebuild_index()
    rebuild_index_s = time.perf_counter() - t

    print("workload_rs.py: overwrite 10%, delete 10%, upload, compact", file=sys.stderr)
    for start in range(0, n, 1000):
        rows = range(start, min(start + 1000, n))
        db.put_many([(keys[i], value_for(i + n)) for i in rows if i % 10 == 0])
        db.delete_many([keys[i] for i in rows if i % 10 == 5])
    t = time.perf_counter()
    db.upload()
    upload_changes_s = time.perf_counter() - t

    t = time.perf_counter()
    db.compact(full=True)  # as the Python s4db's compact (see workload.rs)
    compact_s = time.perf_counter() - t
    db.upload()
    compact_and_upload_s = time.perf_counter() - t
    db.close()
    del db

    print("workload_rs.py: cold reader", file=sys.stderr)
    t = time.perf_counter()
    reader = s4db_rs.open_remote(remote)
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
    for i, value in zip(many, got):
        check("get_many", i, value, final_value(i, n))

    emit(
        f"s4db_rs (Python) {s4db_rs.__version__}",
        n,
        data_fingerprint([k.decode() for k in keys[:1000]], values),
        bulk_put_per_s=bulk_put_per_s,
        single_put_per_s=single_put_per_s,
        local_get_per_s=local_get_per_s,
        open_s=open_s,
        rebuild_index_s=rebuild_index_s,
        compact_s=compact_s,
        compact_and_upload_s=compact_and_upload_s,
        index_bytes_per_key=index_bytes_per_key,
        upload_s=upload_s,
        upload_changes_s=upload_changes_s,
        cold_open_and_first_get_s=cold_open_and_first_get_s,
        remote_get_per_s=remote_get_per_s,
        get_many_1000_s=get_many_1000_s,
    )


if __name__ == "__main__":
    cli(__doc__, run)
