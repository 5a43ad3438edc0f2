"""Where data and models come from: a local path inside the repository, or a hub name, never confused.

A local source is read only from inside the repository's tracked folders (``data/`` for data,
``models/`` for a model): those folders are DVC dependencies of ``prepare`` and ``base``, so an edit
to a file there, or to the file a link there points at, makes the stage stale. DVC hashes through
links to files but does not descend into links to folders, so a folder is linked file by file
(``cp -rs``). A path elsewhere would be tracked by its string only, so it is refused with the
command that links it in.

A hub name is looked up once with a short timeout; when the hub cannot be reached only the local
cache is used, so an offline run fails in about a second, not after half a minute of retries.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from tokenclean.errors import DataError
from tokenclean.layout import MODELS

log = logging.getLogger(__name__)

# Suffixes that make a name a file, not a hub id (hub ids may carry dots: "Qwen/Qwen2.5-0.5B").
FILE_SUFFIXES = {".jsonl", ".json", ".parquet", ".csv", ".tsv", ".txt", ".gz", ".zst", ".arrow",
                 ".gguf", ".safetensors", ".bin", ".yaml", ".yml"}
HUB_TIMEOUT_S = 10


def is_path(source: str) -> bool:
    """A path separator beyond a hub id's one ``org/name``, a leading ``.``, ``/`` or ``~``, a file
    suffix, or a first component that exists here: a path, never looked up on the hub."""
    p = Path(source)
    return (source.startswith((".", "/", "~")) or "\\" in source or source.count("/") > 1
            or p.suffix.lower() in FILE_SUFFIXES or p.exists() or (len(p.parts) > 1 and Path(p.parts[0]).exists()))


def local(source: str, folder: str, what: str) -> Path:
    """``source`` as an existing path inside ``folder`` (relative to the repository root)."""
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"{what} '{source}' does not exist (a path, so it is not looked up on the hub); fix the path")
    inside = not path.is_absolute() and path.parts[:1] == (folder,) and ".." not in path.parts
    if inside and path.is_dir() and any(p.is_symlink() and p.is_dir() for p in [path, *path.rglob("*")]):
        raise DataError(f"{what} '{source}' is or holds a link to a folder, which DVC does not look into: "
                        "replace each folder link by a tree of file links (cp -rs <the folder> <the link>)")
    if not inside:
        name, target = path.name, path.resolve()
        # DVC hashes through links to files but not through links to folders: link a folder file by file
        link = f"cp -rs {target} {folder}/{name}" if path.is_dir() else f"ln -s {target} {folder}/{name}"
        raise DataError(f"{what} '{source}' is outside {folder}/, so DVC would not notice when it changes; link it "
                        f"in and point {what} at the link:\n  {link}\n  then set {what}: {folder}/{name}")
    return path


def link_in(source: str, folder: str) -> Path:
    """``source`` inside ``folder``: as it is when it is there, else linked in the way DVC tracks (a file
    link, or a folder as a tree of file links: DVC does not look into links to folders)."""
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"'{source}' does not exist; fix the path")
    if not path.is_absolute() and path.parts[:1] == (folder,) and ".." not in path.parts:
        return path
    link = Path(folder) / path.name
    if link.exists() or link.is_symlink():
        raise DataError(f"{link} exists already; remove it, or name it instead of '{source}'")
    link.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        shutil.copytree(path.resolve(), link, copy_function=lambda src, dst: os.symlink(src, dst))
    else:
        link.symlink_to(path.resolve())
    log.info("linked %s -> %s (DVC tracks the content through the link)", link, path.resolve())
    return link


def hub_reachable(kind: str, name: str, revision: str | None) -> bool:
    """Whether the hub answers for ``name`` (``kind``: dataset or model). A name the hub does not
    have is a DataError; an unreachable hub is False (use the local cache only)."""
    import huggingface_hub as hf

    info = hf.dataset_info if kind == "dataset" else hf.model_info
    try:
        info(name, revision=revision, timeout=HUB_TIMEOUT_S)
        return True
    except (hf.errors.RepositoryNotFoundError, hf.errors.RevisionNotFoundError) as e:
        raise DataError(f"the hub has no {kind} '{name}'{f' at revision {revision}' if revision else ''} "
                        f"({type(e).__name__}); check the name (a local path needs a '/', '.' or a suffix)") from None
    except Exception as e:  # offline, DNS, proxy, timeout: fall back on the cache, said once
        log.warning("hub not reachable for %s '%s' (%s); using the local cache only", kind, name, type(e).__name__)
        hf.constants.HF_HUB_OFFLINE = True  # the libraries below would retry for ~30 s otherwise
        return False


def hub_model_revision(name: str, revision: str | None) -> str | None:
    """The commit a hub model resolves to; None when the hub is unreachable (the cache is used)."""
    import huggingface_hub as hf

    if not hub_reachable("model", name, revision):
        return None
    return hf.model_info(name, revision=revision, timeout=HUB_TIMEOUT_S).sha


def hub_dataset(name: str, split: str, revision: str | None):
    """A hub dataset's split, from the hub or, offline, from the local cache."""
    online = hub_reachable("dataset", name, revision)
    import datasets

    if not online:
        datasets.config.HF_HUB_OFFLINE = True  # no retries against an unreachable hub
    try:
        return datasets.load_dataset(name, split=split, revision=revision)
    except Exception as e:  # the library's errors vary by cause; the user needs one line and exit 2
        where = "" if online else " (the hub is not reachable and it is not in the local cache)"
        raise DataError(f"cannot load hub dataset '{name}' split '{split}'{where}: {type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}") from None


def model_source(model) -> dict:
    """What out/base/source.json records of ``model`` (the params' model section): a local directory
    under models/ with its content hash (so an edit to the weights changes every stage after base), or
    a hub id with the revision it resolved to (the model is pinned: set model.revision to that commit)."""
    from tokenclean.io import file_hash

    name, revision = model.base, model.revision
    if is_path(name):
        path = local(name, str(MODELS), "model.base")
        return {"name_or_path": str(path), "sha256": file_hash(path), "chat_template": model.chat_template}
    resolved = hub_model_revision(name, revision)
    return {"name_or_path": name, "revision": revision, "resolved": resolved, "chat_template": model.chat_template}
