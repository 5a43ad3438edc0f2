"""Git and DVC bookkeeping of the retrain flow: track new data, commit, tag, push, roll back."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def sh(root: Path, *cmd: str) -> str:
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"`{' '.join(cmd)}` failed in {root}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc.stdout


def git(root: Path, *args: str) -> str:
    return sh(root, "git", *args)


def dvc(root: Path, *args: str) -> str:
    return sh(root, sys.executable, "-m", "dvc", *args)


def require_clean(root: Path, paths: list[str]) -> None:
    """Retrain commits these files: refuse to mix a user's uncommitted edits into a round."""
    dirty = git(root, "status", "--porcelain", "--", *paths).strip()
    if dirty:
        raise RuntimeError(f"uncommitted changes in {root}:\n{dirty}\n"
                           "retrain commits these files: commit or discard them first")


def head(root: Path) -> str:
    return git(root, "rev-parse", "HEAD").strip()


def commit_round(root: Path, message: str, tag: str, paths: list[str]) -> str:
    git(root, "add", "-A", "--", *paths)
    git(root, "commit", "-q", "-m", message)
    git(root, "tag", tag)
    return head(root)


def use_remote(root: Path, url: str | None) -> list[str]:
    """``dvc push`` arguments: a project-local remote named 'tokenclean' for ``url``, else the default."""
    if url is None:
        return []
    if not re.match(r"^[a-z0-9+]+://", url):  # a local directory: absolute, as DVC reads relative paths from .dvc/
        url = str((root / url).resolve())
    dvc(root, "remote", "add", "--local", "--force", "tokenclean", url)
    return ["-r", "tokenclean"]


def push(root: Path, url: str | None) -> str:
    return dvc(root, "push", *use_remote(root, url))


def restore(root: Path, paths: list[str]) -> None:
    """Put the committed params.yaml / dvc.lock back and the workspace outputs they name."""
    git(root, "checkout", "HEAD", "--", *paths)
    dvc(root, "checkout", "--force")
