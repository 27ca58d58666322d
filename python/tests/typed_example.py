"""An example that `mypy --strict` must accept (checked by scripts/test.sh)."""

from typing import Optional

import s4db_rs


def load(path: str, remote: Optional[str] = None) -> int:
    with s4db_rs.open(path, "c", remote, values="str") as db:
        db.put_many({"a": "1", "b": "2"})
        db[b"c"] = b"3"
        if remote is not None:
            try:
                db.upload()
            except s4db_rs.ConflictError:
                db.upload(rebase=True)
        report = db.stats()
        keys: int = report.keys
        return keys + len(db)


def read_public(url: str, key: str) -> Optional[bytes]:
    try:
        with s4db_rs.open_remote(url, timeout=5.0, retries=2) as db:
            value: Optional[bytes] = db.get(key)
            return value
    except s4db_rs.RemoteError:
        return None


def drop_in(bucket: str, local_dir: str) -> dict[str, object]:
    from s4db_rs.compat import S4DB, ConflictError, S4DBError

    try:
        with S4DB(bucket, "mydb/", local_dir=local_dir, region_name="eu-west-1") as db:
            db.put({"k": "v", "b": b"\x00"})
            try:
                db.upload(rebase=False)
            except ConflictError:
                db.upload()
            found = db.get_many(["k", "b"])
            names: list[str] = db.gc(grace_seconds=3600)
            return {"found": found, "gc": names, "keys": db.keys()}
    except S4DBError as e:
        return {"error": str(e)}
