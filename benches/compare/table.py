"""Prints the side-by-side table of workload results (JSON files, as
printed by examples/workload.rs, benches/compare/workload_rs.py and
benches/compare/workload.py).

    python table.py FIRST.json [SECOND.json ...] BASELINE.json

Each ratio column says how many times better one run is than the last (the
baseline): for rates it divided by the baseline, for times and sizes the
baseline divided by it, so above 1 means it wins.
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
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    try:
        sides = [json.load(open(path)) for path in sys.argv[1:]]
    except (OSError, json.JSONDecodeError) as e:
        sys.exit(f"table.py: {e}")
    base = sides[-1]
    for side in sides[:-1]:
        if side.get("records") != base.get("records"):
            sys.exit(f"table.py: the runs differ in size: {side.get('records')} and {base.get('records')} records")
        if side.get("data_fnv1a") != base.get("data_fnv1a"):
            sys.exit(f"table.py: {side.get('tool')} did not load the same data as {base.get('tool')} (data_fnv1a differs)")
    print(f"{base['records']:,} records of 100 bytes")
    print()
    tools = " | ".join(side["tool"] for side in sides)
    ratios = " | ".join(f"ratio: {side['tool']}" for side in sides[:-1])
    print(f"| phase | {tools} | {ratios} |")
    print("|---|" + "---:|" * (2 * len(sides) - 1))
    for field, what, unit in ROWS:
        values = [side.get(field) for side in sides]
        cells = [fmt(v, unit) for v in values] + [ratio(v, values[-1], unit) for v in values[:-1]]
        print(f"| {what} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
