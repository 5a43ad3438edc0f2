"""Shared fixtures: a tiny config, one tiny run of every stage and one tiny reproduced DVC
repository (both session-scoped: built once, copied by the tests that change them)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from tests.helpers import make_repo, run_stages, sh, tiny_raw  # noqa: E402


@pytest.fixture(scope="session")
def tiny_params():
    from tokenclean.config import parse_params

    return parse_params(tiny_raw())


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_params):
    """One tiny run of every stage's run(), in process, shared by the session's tests (read only)."""
    return run_stages(tmp_path_factory.mktemp("tiny_run"), tiny_params)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_run):
    from tokenclean.model.modeling import load_tokenizer

    return load_tokenizer(tiny_run / "out" / "base")


@pytest.fixture(scope="session")
def reproduced_repo(tmp_path_factory):
    """A git + DVC repository of the project on the tiny config after one whole `dvc repro`, committed.
    Read only: a test that changes a repository copies it (:func:`tests.helpers.copy_repo`)."""
    repo = make_repo(tmp_path_factory.mktemp("reproduced") / "repo")
    (repo.parent / "repro.log").write_text(sh("dvc repro", repo))  # what the first repro ran, for the tests
    sh("git add -A && git commit -qm repro", repo)
    return repo


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API (SQLite) for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


