"""A full disk under the database: told in one line, naming the database and the free space.

DuckDB reports it as a failed COMMIT ("Could not write file ...wal: No space left on device"); the
transaction is gone, everything committed before stays, and the database opens normally afterwards.
Every later write would fail alike, so the flow stops the batch instead of failing each call.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from callqa.pipeline.store import StoreError

# how DuckDB and the OS word ENOSPC (Linux/macOS, Windows)
_NO_SPACE = (os.strerror(errno.ENOSPC), "No space left on device", "There is not enough space on the disk")


class DiskFull(StoreError):
    """The database's disk is full: the batch stops; what was committed is kept."""


def is_disk_full(e: BaseException) -> bool:
    return getattr(e, "errno", None) == errno.ENOSPC or any(m in str(e) for m in _NO_SPACE)


def disk_full_error(db_path: str | Path) -> DiskFull:
    """The one-line error for a full disk under `db_path`, with the free space left there."""
    db_path = Path(db_path)
    try:
        free = f"{shutil.disk_usage(db_path.resolve().parent).free / 1e6:,.1f} MB free"
    except OSError:
        free = "free space unknown"
    return DiskFull(
        db_path,
        f"disk full ({free}): the batch stopped; the calls already stored are kept "
        "and the next run continues from there once there is space",
    )
