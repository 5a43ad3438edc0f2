"""The retrain flow on a copy of the session's reproduced repository, under its prefect_test_harness:
inbox files become a promoted, tagged, pushed round; no new data changes nothing; a failing round is rolled
back; a regression is refused; bad input is not retried."""

import json

import pytest
import yaml

from tests.shell import commit_all, copy_repo, sh

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def retrain_repo(reproduced_repo, tmp_path_factory):
    repo = copy_repo(reproduced_repo, tmp_path_factory.mktemp("retrain") / "repo")
    remote = tmp_path_factory.mktemp("remote")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["retrain"].update(remote=str(remote), tolerance=100.0)  # promotion is tested here, regression below
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh("dvc repro", repo)  # retrain params are read by no stage: nothing runs
    commit_all(repo, "baseline")
    return repo, remote


def state(repo) -> tuple[str, str, str, str]:
    return (sh("git rev-parse HEAD", repo), sh("git tag", repo), (repo / "params.yaml").read_text(),
            (repo / "dvc.lock").read_text())


def new_samples(repo, n=12) -> str:
    lines = (repo / "out/generate/pool.jsonl").read_text().splitlines()[:n]
    return "\n".join(json.dumps({**json.loads(x), "id": f"new-{i}"}) for i, x in enumerate(lines)) + "\n"


def test_retrain_without_new_data_changes_nothing(retrain_repo, prefect_harness):
    from flows.retrain import retrain

    repo, remote = retrain_repo
    before = state(repo)
    assert retrain(repo=str(repo)) == {"status": "no new data"}
    assert state(repo) == before and not any(remote.iterdir())


def test_a_second_retrain_while_one_runs_fails_at_once_and_touches_nothing(retrain_repo, prefect_harness):
    from flows.retrain import RETRAIN_LOCK, retrain
    from tokenclean.locks import Busy, exclusive

    repo, _ = retrain_repo
    (repo / "inbox").mkdir(exist_ok=True)
    (repo / "inbox/waiting.jsonl").write_text(new_samples(repo, 2))
    before = state(repo)
    with exclusive(repo / RETRAIN_LOCK, "retrain"), pytest.raises(Busy, match="another retrain run is in progress"):
        retrain(repo=str(repo))  # as if a first retrain held the repository
    assert state(repo) == before and (repo / "inbox/waiting.jsonl").exists() and not (repo / "rounds").exists()
    (repo / "inbox/waiting.jsonl").unlink()


def test_new_inbox_files_become_a_promoted_round(retrain_repo, prefect_harness):
    from flows.retrain import retrain

    repo, remote = retrain_repo
    (repo / "inbox").mkdir(exist_ok=True)
    (repo / "inbox/batch-1.jsonl").write_text(new_samples(repo))
    result = retrain(repo=str(repo))
    assert result["status"] == "promoted" and result["round"] == "r3"
    assert "round-r3" in sh("git tag", repo) and sh("git status --porcelain -- params.yaml dvc.lock", repo) == ""
    new = {"data": "rounds/r3", "reference": "r2", "start": "r2"}
    assert yaml.safe_load((repo / "params.yaml").read_text())["rounds"]["r3"] == new
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert {"data@r3", "train@r3", "evaluate@r3"} <= set(lock)
    model_md5 = lock["train@r3"]["outs"][0]["md5"]
    assert (remote / "files/md5" / model_md5[:2] / model_md5[2:]).exists(), "the new checkpoint is in the remote"
    assert list((repo / "inbox").iterdir()) == [] and (repo / "rounds/r3/batch-1.jsonl").exists()
    assert "r3" in (repo / "out/summary/rounds.csv").read_text()


def test_a_failing_round_is_rolled_back_and_its_files_parked(retrain_repo, prefect_harness):
    from flows.retrain import retrain

    repo, _ = retrain_repo
    before = state(repo)
    bad = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}]}
    (repo / "inbox/bad.jsonl").write_text(json.dumps(bad) + "\n")
    with pytest.raises(Exception, match="empty assistant turn"):
        retrain(repo=str(repo))
    assert state(repo) == before
    assert (repo / "inbox/rejected/r4/bad.jsonl").exists() and not (repo / "out/rounds/r4").exists()
    assert sh("dvc status", repo).strip().endswith("Data and pipelines are up to date.")


def test_regression_past_the_tolerance_is_refused(tmp_path):
    from flows.retrain import Regression, check_regression
    from tokenclean.config import RetrainCfg

    for name, loss in (("r0", 1.0), ("r1", 1.2)):
        (tmp_path / f"out/rounds/{name}/evaluate").mkdir(parents=True)
        (tmp_path / f"out/rounds/{name}/evaluate/metrics.json").write_text(
            json.dumps({"eval_loss": loss, "accuracy": loss / 2}))
    assert check_regression(tmp_path, RetrainCfg(tolerance=0.25), "r1", "r0")["eval_loss"] == 1.2
    with pytest.raises(Regression, match="eval_loss 1.2000 against 1.0000"):
        check_regression(tmp_path, RetrainCfg(tolerance=0.1), "r1", "r0")
    assert check_regression(tmp_path, RetrainCfg(metric="accuracy", mode="max", tolerance=0.0), "r1", "r0")
    with pytest.raises(Regression):
        check_regression(tmp_path, RetrainCfg(metric="accuracy", mode="max", tolerance=0.0), "r0", "r1")


BAD_STAGE = """import pathlib, sys
with open("attempts", "a") as f:
    f.write("x")
print("error in stage bad: record 3 is not JSON", file=sys.stderr)
sys.exit(int(pathlib.Path("code").read_text()))
"""


@pytest.mark.parametrize("code, attempts", [(2, 1), (1, 3)])
def test_bad_input_is_not_retried_other_failures_are(tmp_path, prefect_harness, code, attempts):
    from flows.pipeline import StageFailed
    from flows.token_cleaning import token_cleaning

    (tmp_path / "dvc.yaml").write_text("stages:\n  bad:\n    cmd: python bad.py\n    deps: [bad.py]\n    outs: [o]\n")
    (tmp_path / "bad.py").write_text(BAD_STAGE)
    (tmp_path / "params.yaml").write_text("flows: {retries: 2, retry_delay_s: 0}\n")
    (tmp_path / "code").write_text(str(code))
    sh("git init -q && dvc init -q && git add -A && git commit -qm init", tmp_path)
    with pytest.raises(StageFailed, match="record 3 is not JSON") as failed:
        token_cleaning(repo=str(tmp_path))
    assert failed.value.exit_code == code and (tmp_path / "attempts").read_text() == "x" * attempts
