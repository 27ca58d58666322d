#!/usr/bin/env python3
"""Writes the seed corpus for the fuzz targets from a small real database.

The files are parsed with nothing but FORMAT.md's layout (§2.1, §3.1, §4):
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
    idx = open(os.path.join(db, "index.idx"), "rb").read()

def put(target, name, data):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    open(os.path.join(out, target, "seed-" + name), "wb").write(data)

put("scan", "segment", seg[48:])
put("index", "index", idx)
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
