"""Integration: `dvc repro` in a temporary git repository on the tiny config.

The whole DAG (fixed-model and 3 self-evolving rounds) runs, a second repro runs nothing,
and a param change re-runs exactly the stages that read it and those downstream.
"""

import pytest
import yaml

from tests.repos import make_repo, ran, sh

pytestmark = pytest.mark.slow

FIXED = {"generate", "base", "prepare", "warmup", "score", "select", "train", "evaluate"}
PER_ROUND = ("evolve_data", "evolve_score", "evolve_select", "evolve_train", "evolve_evaluate")


def rounds(*names, stages=PER_ROUND) -> set[str]:
    return {f"{s}@{r}" for s in stages for r in names}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return make_repo(tmp_path_factory.mktemp("dvc_repo"))


def edit_params(repo, change) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    change(params)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_repro_runs_everything_then_nothing(repo):
    first = sh("dvc repro", repo)
    assert ran(first) == FIXED | {"evolve_split", "evolve_base", "evolve_summary", "report"} | rounds("r0", "r1", "r2")
    metrics = sh("dvc metrics show", repo)
    assert "kept_share" in metrics and "eval_loss" in metrics and "out/evolve/r2/evaluate/metrics.json" in metrics
    assert ran(sh("dvc repro", repo)) == set()


def test_fixed_model_param_reruns_only_its_stages(repo):
    edit_params(repo, lambda p: p["select"].update(data_prop=0.4))
    assert ran(sh("dvc repro", repo)) == {"select", "train", "evaluate", "report"}


def test_round_param_reruns_that_round_and_later_ones_only(repo):
    edit_params(repo, lambda p: p["evolve"]["rounds"]["r1"].update(select={"data_prop": 0.4}))
    again = ran(sh("dvc repro", repo))
    later = rounds("r2", stages=("evolve_score", "evolve_select", "evolve_train", "evolve_evaluate"))
    assert again == rounds("r1", stages=("evolve_select", "evolve_train", "evolve_evaluate")) | later | {"evolve_summary", "report"}


def test_adding_a_round_is_one_line_and_runs_only_its_stages(repo):
    edit_params(repo, lambda p: p["evolve"]["rounds"].update(r3={"prev": "r2", "data": "out/evolve/split/0.parquet"}))
    assert ran(sh("dvc repro", repo)) == rounds("r3") | {"evolve_summary", "report"}
    summary = (repo / "out/evolve_summary/rounds.csv").read_text().splitlines()
    assert summary[0].startswith("round,name,prev") and [r.split(",")[1] for r in summary[1:]] == ["r0", "r1", "r2", "r3"]


def test_misspelt_param_fails_the_stage_with_a_suggestion(repo):
    text = (repo / "params.yaml").read_text()
    try:
        (repo / "params.yaml").write_text(text.replace("data_prop:", "data_prp:"))
        out = sh("dvc repro -f -s select", repo, check=False)
        assert "did you mean 'data_prop'" in out
    finally:
        (repo / "params.yaml").write_text(text)
