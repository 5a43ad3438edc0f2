"""Shared fixtures: a tiny config, one tiny run of every stage and one tiny reproduced DVC
repository (both session-scoped: built once, copied by the tests that change them)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.pop("COLUMNS", None)  # plain audit output is 100 columns unless COLUMNS says otherwise (xdist sets it)
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):  # workers share the cores: no oversubscribed math threads
    workers = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))

from tests.shell import sh  # noqa: E402
from tests.tiny import make_repo, run_stages, tiny_raw  # noqa: E402


@pytest.fixture(scope="session")
def tiny_params():
    from tokenclean.params_file import parse_params

    return parse_params(tiny_raw())


def built_once(tmp_path_factory, name: str, build) -> Path:
    """``build(path)`` once per test session, shared by every pytest-xdist worker (``./run test``
    runs two): the first worker to ask builds it under a file lock, the others wait and reuse it."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's folder, above each worker's own
    path, done = root / name, root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
            build(path)
            done.touch()
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_params):
    """One tiny run of every stage's run(), in process, shared by the session's tests (read only)."""
    return built_once(tmp_path_factory, "tiny_run", lambda path: run_stages(path, tiny_params))


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_run):
    from tokenclean.model.modeling import load_tokenizer

    return load_tokenizer(tiny_run / "out" / "base")


@pytest.fixture(scope="session")
def reproduced_repo(tmp_path_factory):
    """A git + DVC repository of the project on the tiny config after one whole `dvc repro`, committed.
    Read only: a test that changes a repository copies it (:func:`tests.shell.copy_repo`)."""
    def build(path):
        repo = make_repo(path / "repo")
        # one DVC cache for this repository and every copy of it (copy_repo): a stage that two tests run on
        # the same inputs (the retrain flow's and the schedule's new round) is run once, then restored
        sh(f"dvc cache dir --local {path / 'dvc-cache'}", repo)
        (path / "repro.log").write_text(sh("dvc repro", repo))  # what the first repro ran, for the tests
        sh("git add -A && git commit -qm repro", repo)

    return built_once(tmp_path_factory, "reproduced", build) / "repo"


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API (SQLite) for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield




# xdist --dist loadfile hands out files in this order, each to the first free worker (`./run test` passes
# --no-loadscope-reorder: by default xdist hands out the files with the most tests first, whatever the order here).
# The first builds the reproduced repository (~2.5 min on one core); the long files that do not need it come next,
# so the other worker runs them meanwhile instead of waiting on the repository's lock; then the flow files; the
# short files fill in at the end, evening out the two workers.
LONGEST_FIRST = ("test_dvc_pipeline.py", "test_resume.py", "test_distributed.py", "test_bad_input.py",
                 "test_lmeval.py", "test_own_data.py", "test_flows.py", "test_retrain.py", "test_serve.py")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: LONGEST_FIRST.index(item.path.name) if item.path.name in LONGEST_FIRST
               else len(LONGEST_FIRST))
