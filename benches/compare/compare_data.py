"""What the comparison workloads share: the data, the key sequence, the
expected final state and the check, byte for byte as on the Rust side
(tests/common/data.rs, examples/workload.rs)."""

import argparse
import json
import resource
import sys
import tempfile


def key_for(i):
    return f"key{i:08d}"


def value_for(i, length=100):
    """Byte for byte the Rust `value_for` (tests/common/data.rs)."""
    if i % 2 == 0:
        text = f"value {i} of the quick brown fox jumps over the lazy dog ".encode()
        return (text * (length // len(text) + 1))[:length]
    mask = (1 << 64) - 1
    x = ((i * 0x9E3779B97F4A7C15) & mask) | 1
    out = bytearray(length)
    for j in range(length):
        x ^= (x << 13) & mask
        x ^= x >> 7
        x ^= (x << 17) & mask
        out[j] = b"0123456789abcdef"[x & 15]
    return bytes(out)


class Keys:
    """xorshift64 from a fixed seed: `Xorshift` in tests/common/data.rs."""

    def __init__(self):
        self.x = 0x2545F4914F6CDD1D

    def next_below(self, n):
        mask = (1 << 64) - 1
        self.x ^= (self.x << 13) & mask
        self.x ^= self.x >> 7
        self.x ^= (self.x << 17) & mask
        return self.x % n


def data_fingerprint(keys, values):
    """FNV-1a (64-bit) over the first 1,000 keys and values, as on the Rust side."""
    h = 0xCBF29CE484222325
    for k, v in zip(keys[:1000], values[:1000]):
        for b in k.encode() + v:
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def final_value(i, n):
    if i % 10 == 0:
        return value_for(i + n)
    if i % 10 == 5:
        return None
    return value_for(i)


def check(what, i, got, want):
    if got != want:
        sys.exit(f"{sys.argv[0]}: {what}: wrong value for {key_for(i)}")


def cli(doc, run):
    """The command line both Python workloads take: parses --bucket,
    --prefix, --records and --dir, then calls run(args, n, local_dir) with a
    temporary directory unless --dir names one. Errors end the process with
    one line, not a traceback."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--bucket", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--dir", default=None)
    a = p.parse_args()
    n = a.records
    if not 100 <= n <= 99_999_999:
        p.error("--records must be between 100 and 99,999,999")
    try:
        if a.dir:
            run(a, n, a.dir)
        else:
            with tempfile.TemporaryDirectory(prefix="s4db-py-") as local_dir:
                run(a, n, local_dir)
    except Exception as e:  # a clear one-line error, not a traceback
        sys.exit(f"{sys.argv[0]}: error: {type(e).__name__}: {e}")


def emit(tool, records, fingerprint, **measures):
    """Prints a workload's result: one JSON object with the tool, the size,
    the data fingerprint, every measure, and the peak resident memory."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({
        "tool": tool,
        "records": records,
        "data_fnv1a": fingerprint,
        **measures,
        "peak_rss_bytes": peak,
    }))
