"""`--rev`: a run read at past git revisions through DVC (cache, then remote), the workspace untouched."""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest
from audit_fixtures import bpe_tokenizer, build_run, fixture_samples, write_round

from tokenclean import columns as C
from tokenclean.cli.main import main

pytestmark = pytest.mark.slow  # shells out to git and dvc

GIT = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
       "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def sh(repo, *cmd):
    subprocess.run(cmd, cwd=repo, env=GIT, check=True, capture_output=True)


def commit(repo, message):
    sh(repo, sys.executable, "-m", "dvc", "add", "out/base", "out/rounds/fixed/data", "out/rounds/fixed/score",
       "out/rounds/fixed/select")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", message)


def workspace_digest(repo) -> dict:
    """Content hash of every file outside .git and .dvc (DVC's own bookkeeping may change)."""
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(repo.rglob("*"))
            if p.is_file() and p.relative_to(repo).parts[0] not in (".git", ".dvc")}


def kept(repo, capsys, *rev) -> int:
    assert main(["audit", "stats", "--repo", str(repo), "--json", *rev]) == 0
    return json.loads(capsys.readouterr().out)[0]["kept"]


def test_audit_at_two_revisions(tmp_path, capsys):
    repo, tok = tmp_path / "repo", bpe_tokenizer()
    repo.mkdir()
    sh(repo, "git", "init", "-q")
    sh(repo, sys.executable, "-m", "dvc", "init", "-q")
    sh(repo, sys.executable, "-m", "dvc", "remote", "add", "-d", "store", str(tmp_path / "remote"))  # committed with v1
    build_run(repo, tok)
    commit(repo, "v1: every third token dropped")
    v2 = fixture_samples(tok)
    v2[0][C.KEEP] = [True] * len(v2[0][C.KEEP])
    write_round(repo, "fixed", v2)
    commit(repo, "v2: s0 keeps everything")
    v3 = fixture_samples(tok)
    for s in v3:
        s[C.KEEP] = [False] * len(s[C.KEEP])
    write_round(repo, "fixed", v3)  # uncommitted: the workspace differs from both revisions
    before = workspace_digest(repo)

    flipped = fixture_samples(tok)[0][C.KEEP].count(False)
    assert kept(repo, capsys) == 0
    assert kept(repo, capsys, "--rev", "HEAD") - kept(repo, capsys, "--rev", "HEAD~1") == flipped > 0
    assert main(["audit", "diff", "fixed@HEAD~1", "fixed@HEAD", "--repo", str(repo), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["dropped_to_kept"], d["kept_to_dropped"], [e["sample_id"] for e in d["examples"]]) == (flipped, 0, ["s0"])
    assert main(["audit", "show", "--repo", str(repo), "--rev", "HEAD~1", "--sample", "s0", "--plain"]) == 0
    assert "{re}" in capsys.readouterr().out
    assert workspace_digest(repo) == before

    # with the cache gone, the same revisions stream from the remote
    sh(repo, sys.executable, "-m", "dvc", "push", "-q", "--all-commits")
    shutil.rmtree(repo / ".dvc" / "cache")
    assert kept(repo, capsys, "--rev", "HEAD") - kept(repo, capsys, "--rev", "HEAD~1") == flipped
    assert workspace_digest(repo) == before
