"""Writes a database with the real Python s4db (0.8.0 or 0.10.0), run by
test_migrate.py in a virtual environment that has that version installed.

Usage: python write_with_python_s4db.py ENDPOINT BUCKET ACCESS SECRET PREFIX LOCAL_DIR
Prints JSON: {"committed": {...}, "all": {...}}, each key -> ["s", text] or
["b", hex], as the Python s4db itself reads them back.
"""

import json
import os
import sys

import s4db
from s4db import S4DB

endpoint, bucket, access, secret, prefix, local_dir = sys.argv[1:]
db = S4DB(
    bucket=bucket,
    prefix=prefix + "/",
    local_dir=local_dir,
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id=access,
    aws_secret_access_key=secret,
)
binary = hasattr(s4db, "UnsyncedWritesError")  # 0.10 stores bytes as well as str

db.put({f"key{i:05d}": f"value {i} " + "x" * (i % 50) for i in range(3000)})
db.put({"overwritten": "first", "deleted": "soon gone", "empty": ""})
db.put({"overwritten": "second", "unicode": "héllo wörld ✓"})
db.delete(["deleted", "key00007"])
if binary:
    db.put({"binary": bytes(range(256)), "incompressible": os.urandom(64)})
db.upload()


def snapshot():
    out = {}
    for k in db.keys():
        v = db.get(k)
        out[k] = ["b", v.hex()] if isinstance(v, bytes) else ["s", v]
    return out


committed = snapshot()
if hasattr(db, "flush"):
    db.flush()  # 0.10: a local index.idx of the committed state (0.8 keeps one always)
# Writes after the upload: only in the local directory's data files.
db.put({"local-only": "never uploaded", "overwritten": "third"})
db.delete(["key00008"])
print(json.dumps({"committed": committed, "all": snapshot()}))
