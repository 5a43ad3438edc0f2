"""A repository's files at a git revision, read through DVC's Python API.

DVC-tracked artifacts come from the local cache, or stream from the remote when the cache
lacks them; git-tracked files (``params.yaml``) come from the git object store. Nothing is
checked out: the workspace is never touched. One ``DVCFileSystem`` per revision serves every
read (``dvc.api.open`` would open the repository again for each file).
"""

from __future__ import annotations

import fnmatch
import posixpath
from pathlib import Path

import pyarrow.parquet as pq
from dvc.api import DVCFileSystem


class RevFiles:
    def __init__(self, repo: str | Path, rev: str):
        self.rev = rev
        self.fs = DVCFileSystem(str(repo), rev=rev)

    def _missing(self, path: str) -> FileNotFoundError:
        return FileNotFoundError(f"{path}: not in the repository at revision '{self.rev}' "
                                 "(not committed, or its stage had not run)")

    def read_table(self, path, columns=None):
        path = str(path)
        if not self.fs.exists(path):
            raise self._missing(path)
        with self.fs.open(path, "rb") as f:
            return pq.ParquetFile(f).read(columns=columns)

    def column_names(self, path):
        path = str(path)
        if not self.fs.exists(path):
            raise self._missing(path)
        with self.fs.open(path, "rb") as f:
            return pq.read_schema(f).names

    def read_text(self, path):
        path = str(path)
        with self.fs.open(path, "r") as f:
            return f.read()

    def exists(self, path):
        return self.fs.exists(str(path))

    def subdirs(self, path):
        path = str(path)
        entries = self.fs.ls(path, detail=True) if self.fs.isdir(path) else []
        return sorted(posixpath.basename(e["name"].rstrip("/")) for e in entries if e["type"] == "directory")

    def local_dir(self, path, dest, skip=()):
        """Copy a directory out of the revision into ``dest``, leaving out names matching ``skip``."""
        path = str(path)
        if not self.fs.isdir(path):
            raise self._missing(path)
        dest = Path(dest)
        for src in self.fs.find(path):
            rel = posixpath.relpath(src, path)
            if any(fnmatch.fnmatch(part, pat) for part in rel.split("/") for pat in skip):
                continue
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(src, str(dest / rel))
        return dest
