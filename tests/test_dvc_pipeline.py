"""Integration: `dvc repro` in a temporary git repository on the tiny config.

The whole DAG (the warm-up, fixed and 2 self-evolving rounds) runs, a second repro runs nothing,
and a param or code change re-runs exactly the stages that read it and those downstream.
"""

import pytest
import yaml

from tests.shell import copy_repo, ran, sh

pytestmark = pytest.mark.slow

DATA = {"generate", "base", "check", "prepare", "split"}
PER_ROUND = ("data", "score", "select", "train", "evaluate")
ROUNDS = ("warmup", "fixed", "r1", "r2")
FINAL = {"summary", "report", "export"}  # the stages after every round


def rounds(*names, stages=PER_ROUND) -> set[str]:
    return {f"{s}@{r}" for s in stages for r in names}


@pytest.fixture
def repo(reproduced_repo, tmp_path):
    return copy_repo(reproduced_repo, tmp_path / "repo")


def edit_params(repo, change) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    change(params)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_repro_runs_everything_then_nothing(reproduced_repo, repo):
    first = (reproduced_repo.parent / "repro.log").read_text()
    assert ran(first) == DATA | FINAL | rounds(*ROUNDS)
    metrics = sh("dvc metrics show", repo)
    assert "kept_share" in metrics and "eval_loss" in metrics and "out/rounds/r2/evaluate/metrics.json" in metrics
    assert ran(sh("dvc status", repo)) == set() and "up to date" in sh("dvc status", repo)


def test_one_plot_per_figure_rounds_by_name_and_every_round_s_curve(reproduced_repo):
    import json
    import subprocess
    import sys

    from tests.shell import env

    shown = subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "--json"], cwd=reproduced_repo,
                           capture_output=True, text=True, env=env(), check=True).stdout
    plots = {k: v for k, v in json.loads(shown)["data"].items() if k != "ablation"}  # results/: from compare
    figures = ["eval_loss", "accuracy", "kept_share", "answer_kept", "noise_dropped", "score_auc"]
    curves = ["train_loss", "train_lr", "train_grad_norm", "train_kept_tokens"]
    assert list(plots) == [*figures, *curves] and all(len(v) == 1 for v in plots.values())  # no twins
    for name in figures:
        spec = plots[name][0]["content"]
        assert spec["encoding"]["x"] == {**spec["encoding"]["x"], "field": "name", "type": "ordinal"}
        assert [row["name"] for row in spec["data"]["values"]] == ["warmup", "fixed", "r1", "r2"]  # params order
    values = plots["train_loss"][0]["content"]["data"]["values"]
    assert {row["round"] for row in values} == {"base", *ROUNDS}  # the tiny base's pretraining and every round
    assert all(int(row["step"]) >= 1 and float(row["loss"]) > 0 for row in values)  # CSV cells: strings


def test_a_select_param_reaches_every_round_s_selection(repo):
    edit_params(repo, lambda p: p["select"].update(data_prop=0.4))
    # a dry run lists the stages whose own inputs changed; what they change downstream reruns as in
    # test_round_param_reruns_that_round_and_later_ones_only, which runs for real
    assert ran(sh("dvc repro --dry", repo)) == rounds(*ROUNDS, stages=("select",))


def test_round_param_reruns_that_round_and_later_ones_only(repo):
    edit_params(repo, lambda p: p["rounds"]["r1"].update(select={"data_prop": 0.4}))
    again = ran(sh("dvc repro", repo))
    later = rounds("r2", stages=("score", "select", "train", "evaluate"))
    assert again == rounds("r1", stages=("select", "train", "evaluate")) | later | FINAL


def test_adding_a_round_is_one_line_and_runs_only_its_stages(repo):
    edit_params(repo, lambda p: p["rounds"].update(
        r3={"data": "out/split/0.parquet", "reference": "r2", "start": "r2"}))
    assert ran(sh("dvc repro", repo)) == rounds("r3") | FINAL
    summary = (repo / "out/summary/rounds.csv").read_text().splitlines()
    assert summary[0].startswith("round,name,reference,start")
    assert [r.split(",")[1] for r in summary[1:]] == [*ROUNDS, "r3"]


def test_the_fixed_round_runs_on_its_own(repo):
    needs = ran(sh("dvc repro --force --dry evaluate@fixed", repo))  # every stage it needs, none run
    assert needs == DATA - {"split"} | rounds("warmup", stages=PER_ROUND[:4]) | rounds("fixed")


def test_changing_an_imported_library_file_reruns_the_stages_that_import_it(repo):
    with (repo / "tokenclean/audit/markdown.py").open("a") as f:
        f.write("\n# a change to the audit's code\n")
    assert ran(sh("dvc repro", repo)) == {"summary", "report"}  # the stages that import tokenclean/audit


def test_misspelt_param_fails_the_stage_with_a_suggestion(repo):
    text = (repo / "params.yaml").read_text()
    (repo / "params.yaml").write_text(text.replace("data_prop:", "data_prp:"))
    out = sh("dvc repro -f -s select@fixed", repo, check=False)
    assert "did you mean 'data_prop'" in out
