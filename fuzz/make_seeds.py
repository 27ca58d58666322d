#!/usr/bin/env python3
"""Writes the seed corpus for the fuzz targets from a small real database.

The files are parsed with nothing but FORMAT.md's layout (§2.1, §3.1, §4, §4.8):
this script doubles as a check that the document is enough to read them.
Usage: fuzz/make_seeds.py PATH/TO/s4db   (run from the repository root)
"""
import os, struct, subprocess, sys, tempfile

s4db = sys.argv[1]
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
with tempfile.TemporaryDirectory() as d:
    db = os.path.join(d, "db")
    lines = [f'{{"key":"key{i:08}","value":"value {i} ' + "abc" * (i % 9) + '"}' for i in range(40)]
    lines.append('{"key":"bin","value_b64":"AP8QgAECAwQ="}')
    subprocess.run([s4db, "-q", "--dir", db, "import", "--batch", "7"], input="\n".join(lines).encode(), check=True)
    subprocess.run([s4db, "-q", "--dir", db, "del", "key00000003", "key00000004"], check=True)
    segs = sorted(f for f in os.listdir(db) if f.startswith("data_"))
    seg = open(os.path.join(db, segs[0]), "rb").read()
    root = open(os.path.join(db, "index.idx"), "rb").read()
    # The root's run table (FORMAT.md §4.8): number, writer per 40-byte entry.
    (run_count,) = struct.unpack_from("<I", root, 12)
    (run_table,) = struct.unpack_from("<Q", root, 64)
    runs = []
    for r in range(run_count):
        number, writer = struct.unpack_from("<QQ", root, run_table + 40 * r)
        name = f"index_{number:08}_{writer:016x}.run"
        runs.append(open(os.path.join(db, name), "rb").read())
    idx = runs[0]  # the base

def put(target, name, data):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    open(os.path.join(out, target, "seed-" + name), "wb").write(data)

put("scan", "segment", seg[48:])
put("index", "index", idx)
put("index", "run-with-tombstones", runs[-1])
put("root", "root", root)
pos, n = 48, 0
while pos + 12 <= len(seg) and n < 8:
    key_len, val_len = struct.unpack_from("<HI", seg, pos + 6)
    put("record", f"record{n}", seg[pos:pos + 12 + key_len + val_len])
    pos += 12 + key_len + val_len
    n += 1
(page_count,) = struct.unpack_from("<I", idx, 60)
(dir_off,) = struct.unpack_from("<Q", idx, 64)
starts = struct.unpack_from(f"<{page_count + 1}Q", idx, dir_off)
for p in range(min(page_count, 2)):
    page = idx[starts[p]:starts[p + 1]]
    key = b"key00000001"
    put("page", f"page{p}", bytes([len(key)]) + key + page)
print("seeds written to", out)

# The Python s4db's files (FORMAT.md §11), for the python_s4db target: the
# example data file, and version 2 and 1 indexes of its live key.
import zlib
py_file = bytes.fromhex(
    "533444420200000001"
    "0200000002000000056b3168656c6c6f79656341"
    "0000000002000000066b322800619a0100e92e2eb0"
    "0100000002000000006b31ea41cd53"
)
put("python_s4db", "datafile", py_file)
v2 = struct.pack(">BII", 2, 1, 1) + struct.pack(">H", 2) + b"k2" + struct.pack(">QQI", 1, 29, 21)
put("python_s4db", "index2", v2 + struct.pack(">I", zlib.crc32(v2)))
put("python_s4db", "index1", struct.pack(">BII", 1, 2, 1) + struct.pack(">H", 2) + b"k2" + struct.pack(">IQI", 1, 29, 21))
