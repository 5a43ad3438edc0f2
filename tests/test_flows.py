"""The token_cleaning flow on the tiny config, under the session's prefect_test_harness.

It must leave exactly the dvc.lock entries that `dvc repro` leaves (checked on the fixed-model rounds, the
stages `evaluate@fixed` needs), rerun nothing, publish each round, and stream each stage's log. The retrain
flow is in tests/test_retrain.py (a file of its own, so the two long files run on different test workers).
"""

import re

import pytest
import yaml

from tests.tiny import make_repo

pytestmark = pytest.mark.slow


FIXED_MODEL = ["generate", "base", "check", "prepare", *(f"{s}@warmup" for s in ("data", "score", "select", "train")),
               *(f"{s}@fixed" for s in ("data", "score", "select", "train", "evaluate"))]


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory, prefect_harness):
    """The flow up to evaluate@fixed on a fresh checkout (it runs while another test worker builds the
    session's reproduced repository, which only the comparison below needs)."""
    from flows.token_cleaning import token_cleaning

    repo = make_repo(tmp_path_factory.mktemp("flow_repo") / "repo")
    return repo, token_cleaning(repo=str(repo), targets=["evaluate@fixed"]), None


def test_flow_leaves_the_dvc_lock_that_dvc_repro_leaves(flow_run, reproduced_repo):
    (repo, result, _), twin = flow_run, reproduced_repo
    flow_lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    repro_lock = yaml.safe_load((twin / "dvc.lock").read_text())["stages"]
    assert set(result["ran"]) == set(FIXED_MODEL) and result["ran"] == list(flow_lock)  # in DVC's own order
    assert all(flow_lock[s] == repro_lock[s] for s in FIXED_MODEL)
    for metrics in ("out/rounds/fixed/evaluate/metrics.json", "out/rounds/fixed/select/metrics.json"):
        assert (repo / metrics).read_text() == (twin / metrics).read_text()


def test_flow_rerun_runs_nothing(flow_run, prefect_harness):
    from flows.token_cleaning import token_cleaning

    assert token_cleaning(repo=str(flow_run[0]), targets=["evaluate@fixed"])["ran"] == []


def test_each_round_publishes_an_artifact_with_its_lock_hashes(flow_run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    repo, result, _ = flow_run
    assert [r["round"] for r in result["rounds"]] == ["fixed"]  # the rounds it evaluated
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    [fixed] = result["rounds"]
    keep = next(o for o in lock["select@fixed"]["outs"] if o["path"].endswith("keep.parquet"))
    assert fixed["mask_md5"] == keep["md5"]
    assert fixed["checkpoint_md5"] == lock["train@fixed"]["outs"][0]["md5"]
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["round-fixed"])))
    assert arts and fixed["mask_md5"] in arts[0].data and "share kept" in arts[0].data


def test_a_stage_s_own_log_lines_are_in_its_task_run_logs(flow_run):
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterLevel

    wanted = "train@fixed: "  # tokenclean.stage's format: "HH:MM:SS train@fixed: ..."
    with get_client(sync_client=True) as client:
        for _ in range(20):  # logs reach the API in batches
            found, offset = [], 0
            while page := client.read_logs(log_filter=LogFilter(level=LogFilterLevel(ge_=0)), limit=200, offset=offset):
                found += [x.message for x in page if wanted in x.message]
                offset += len(page)
            if found:
                break
            time.sleep(0.5)
    assert any(re.match(r"\d\d:\d\d:\d\d train@fixed: ", x) for x in found), found  # the stage's own line
    assert not any("| INFO" in x for x in found), "this process's console output is never fed back"
