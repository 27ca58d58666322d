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
