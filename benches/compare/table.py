"""Prints the side-by-side table of two workload results (JSON files, as
printed by examples/workload.rs and benches/compare/workload.py).

    python table.py RUST.json PYTHON.json

The ratio column says how many times better the first is than the second:
for rates the first divided by the second, for times and sizes the second
divided by the first, so above 1 means the first wins.
"""

import json
import sys

# (field, what it measures, unit): unit "rate" is per second (higher is
# better); "s" and "bytes" are lower-is-better.
ROWS = [
    ("bulk_put_per_s", "bulk put, batches of 1,000", "rate"),
    ("single_put_per_s", "single puts", "rate"),
    ("local_get_per_s", "random local get, one thread", "rate"),
    ("open_s", "reopen of the local database", "s"),
    ("rebuild_index_s", "rebuild index from segments", "s"),
    ("compact_s", "compact (after 10% overwritten, 10% deleted)", "s"),
    ("compact_and_upload_s", "compact, then upload the result", "s"),
    ("index_bytes_per_key", "index memory per key", "bytes"),
    ("upload_s", "first upload (everything)", "s"),
    ("upload_changes_s", "upload after changing 20% of keys", "s"),
    ("cold_open_and_first_get_s", "cold open from S3 + first get", "s"),
    ("remote_get_per_s", "remote gets, one at a time", "rate"),
    ("get_many_1000_s", "get_many of 1,000 random keys", "s"),
    ("peak_rss_bytes", "peak resident memory", "bytes"),
]


def fmt(value, unit):
    if value is None:
        return "n/a"
    if unit == "rate":
        for scale, suffix in ((1e6, "M"), (1e3, "k")):
            if value >= scale:
                return f"{value / scale:.3g}{suffix}/s"
        return f"{value:.3g}/s"
    if unit == "s":
        if value < 1e-3:
            return f"{value * 1e6:.3g} µs"
        if value < 1:
            return f"{value * 1e3:.3g} ms"
        return f"{value:.3g} s"
    for scale, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if value >= scale:
            return f"{value / scale:.3g} {suffix}"
    return f"{value:.3g} B"


def ratio(first, second, unit):
    if not first or not second:
        return "n/a"
    r = first / second if unit == "rate" else second / first
    return f"{r:.3g}×"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    try:
        sides = [json.load(open(path)) for path in sys.argv[1:]]
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"table.py: {e}")
    a, b = sides
    if a.get("records") != b.get("records"):
        sys.exit(f"table.py: the runs differ in size: {a.get('records')} and {b.get('records')} records")
    if a.get("data_fnv1a") != b.get("data_fnv1a"):
        sys.exit("table.py: the two runs did not load the same data (data_fnv1a differs)")
    print(f"{a['records']:,} records of 100 bytes")
    print()
    print(f"| phase | {a['tool']} | {b['tool']} | ratio |")
    print("|---|---:|---:|---:|")
    for field, what, unit in ROWS:
        x, y = a.get(field), b.get(field)
        print(f"| {what} | {fmt(x, unit)} | {fmt(y, unit)} | {ratio(x, y, unit)} |")


if __name__ == "__main__":
    main()
