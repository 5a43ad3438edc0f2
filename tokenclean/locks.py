"""Advisory OS file locks (flock): one holder at a time, dropped by the OS when the holder dies.

A crash never leaves a lock stuck, and a second run fails at once instead of waiting.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class Busy(RuntimeError):
    """Another process holds the lock: something else runs in this repository."""


@contextlib.contextmanager
def exclusive(path: str | Path, what: str, hint: str = ""):
    """Hold the lock file ``path`` (its content: the holder's pid and ``what``) for the block, or raise
    :class:`Busy` at once, naming the holder (and adding ``hint``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise Busy(f"{path} is held by {holder}" + (f": {hint}" if hint else "")) from None
        fh.truncate(0)
        fh.write(f"pid {os.getpid()}: {what}\n")
        fh.flush()
        try:
            yield
        finally:
            fh.truncate(0)
            fcntl.flock(fh, fcntl.LOCK_UN)


def is_held(path: str | Path) -> str | None:
    """Who holds ``path`` (its content), or None if nobody does (checked by trying it for a moment)."""
    if not Path(path).exists():
        return None
    with open(path) as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return fh.read().strip() or "another process"
        fcntl.flock(fh, fcntl.LOCK_UN)
        return None
