"""`tokenclean compare`: the methods table from real DVC experiments, the ablation, the queued grid."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tokenclean.cli.compare import fill_docs
from tokenclean.cli.main import main as cli
from tokenclean.config import CompareCfg, MethodCfg
from tokenclean.evaluation.comparison import Diff, Run, ablation, main_table, method_metrics, paired
from tokenclean.evaluation.grid import experiment_grid

PARAMS = """\
seed: 0
select: {strategy: global, data_prop: 0.6, seed: 0}
evaluate: {lm_eval: {tasks: [t_b, t_a]}}
rounds:
  fixed: {data: x, reference: base, start: base}
  r0: {data: x, reference: base, start: base}
  r1: {data: x, reference: r0, start: r0}
compare: {seeds: [0, 1], ablation: [0.3, 0.6], ablation_seeds: null}
"""

# Metrics as a known function of the params, so every cell of the table can be worked out by hand.
STAGE = """\
import json, os, yaml
p = yaml.safe_load(open("params.yaml"))
seed, share = p["seed"], p["select"]["data_prop"]
t_a = {"full": 0.5, "global": 0.6}[p["select"]["strategy"]] + 0.1 * seed + (share - 0.6)
def dump(path, m):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    json.dump(m, open(path, "w"))
dump("out/rounds/fixed/evaluate/metrics.json", {"lm_eval/t_a/acc": t_a, "lm_eval/t_b/acc": 0.2 + 0.1 * seed,
                                   "lm_eval/t_b/acc_norm": 0.9, "accuracy": 0.05})
dump("out/rounds/r0/evaluate/metrics.json", {"lm_eval/t_a/acc": 0.0, "lm_eval/t_b/acc": 0.0})
dump("out/rounds/r1/evaluate/metrics.json", {"lm_eval/t_a/acc": t_a + 0.1, "lm_eval/t_b/acc": 0.4 + 0.1 * seed})
dump("out/summary/rounds.json", [{"name": "r0"}, {"name": "r1", "lm_eval/t_a/acc": 0.125}])
"""

DVC_YAML = """\
stages:
  run:
    cmd: python stage.py
    deps: [stage.py]
    params: [seed, select, rounds, evaluate]
    outs: [out/summary/rounds.json]
    metrics:
      - out/rounds/fixed/evaluate/metrics.json: {cache: false}
      - out/rounds/r0/evaluate/metrics.json: {cache: false}
      - out/rounds/r1/evaluate/metrics.json: {cache: false}
"""

EXPERIMENTS = {  # two seeds of full-token training; the global run at 0.6 and at 0.3
    # (-S edits the workspace's params.yaml, which the next run starts from: each sets what it changes back)
    "full_token-s0": ["select.strategy=full", "seed=0"],
    "full-s1": ["select.strategy=full", "seed=1"],
    "global-s0": ["select.strategy=global", "seed=0"],
    "global-p03-s0": ["select.strategy=global", "seed=0", "select.data_prop=0.3"],
}

# mean ± standard error over seeds (full_token: seeds 0 and 1, 0.1 apart: SE 0.05); free generation in percent;
# methods without runs (random, per_sample) are left out of the table
TABLE = """\
| Method | t_b | t_a | Average | accuracy (free generation) | Seeds |
|---|---:|---:|---:|---:|---:|
| full_token | 25.00 ± 5.00 | 55.00 ± 5.00 | 40.00 ± 5.00 | **5.00 ± 0.00** | 2 |
| fixed_model | 20.00 | 60.00 | 40.00 | **5.00** | 1 |
| self_evolving | **40.00** | **70.00** | **55.00** |  | 1 |

Minus full_token, paired by seed: mean [95% t interval]

| Method | t_b | t_a | Average | accuracy (free generation) | Seeds |
|---|---:|---:|---:|---:|---:|
| fixed_model | +0.00 | +10.00 | +5.00 | +0.00 | 1 |
| self_evolving | +20.00 | +20.00 | +20.00 |  | 1 |
"""


def sh(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, f"{cmd}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    work = tmp_path_factory.mktemp("compare_repo")
    for name, text in (("params.yaml", PARAMS), ("stage.py", STAGE), ("dvc.yaml", DVC_YAML)):
        (work / name).write_text(text)
    sh(["git", "init", "-q"], work)
    sh(["dvc", "init", "-q"], work)
    sh(["git", "add", "-A"], work)
    sh(["git", "commit", "-qm", "init"], work)
    for name, sets in EXPERIMENTS.items():
        sh(["dvc", "exp", "run", "-q", "-n", name, *[a for s in sets for a in ("-S", s)]], work)
    return work


@pytest.mark.slow  # four DVC experiments in a temporary repository (seconds)
def test_table_of_two_experiments_per_method_is_exact(repo, capsys):
    assert cli(["compare", "--repo", str(repo)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(TABLE)
    assert "note: fixed_model: 1 of 2 seeds" in printed and "note: 4 runs;" in printed
    assert "note: random: 0 of 2 seeds, left out" in printed
    assert (repo / "results" / "compare.md").read_text() == TABLE
    rows = {r["method"]: r for r in csv.DictReader(open(repo / "results" / "compare.csv"))}
    assert float(rows["full_token"]["t_a_mean"]) == pytest.approx(0.55)
    assert float(rows["full_token"]["Average_std"]) == pytest.approx(0.1 / 2**0.5)
    assert float(rows["full_token"]["Average_se"]) == pytest.approx(0.05)
    assert float(rows["self_evolving"]["t_a_diff"]) == pytest.approx(0.2) and rows["full_token"]["t_a_diff"] == ""
    assert rows["full_token"]["seeds"] == "0 1" and rows["random"]["t_a_mean"] == ""


@pytest.mark.slow
def test_ablation_csv_is_the_average_against_data_prop(repo, capsys):
    cli(["compare", "--repo", str(repo)])
    rows = list(csv.DictReader(open(repo / "results" / "ablation.csv")))
    assert [r["data_prop"] for r in rows] == ["0.3", "0.6"]
    got = [(float(r["fixed_model"]), float(r["self_evolving"])) for r in rows]
    # 0.3: t_a drops by 0.3 for the fixed model (mean of 0.3 and 0.2), the last round adds 0.1 to it
    assert got == [pytest.approx((0.25, 0.4)), pytest.approx((0.4, 0.55))]
    assert [r["fixed_model_seeds"] for r in rows] == ["1", "1"]
    svg = (repo / "results" / "ablation.svg").read_text()
    assert svg.count("<polyline") == 2 and "<title>fixed_model at 0.3: 25.0</title>" in svg
    assert "<title>self_evolving at 0.6: 55.0</title>" in svg


@pytest.mark.slow
def test_named_experiments_only(repo, capsys):
    cli(["compare", "--repo", str(repo), "full_token-s0", "global-s0", "--out", "named"])
    table = (repo / "named" / "compare.md").read_text()
    assert "| full_token | 20.00 | 50.00 | 35.00 | **5.00** | 1 |" in table


@pytest.mark.slow
def test_queue_dry_run_lists_the_missing_grid(repo, capsys):
    assert cli(["compare", "--repo", str(repo), "--queue", "--dry-run"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("dvc exp run --queue")]
    grid = experiment_grid(CompareCfg(seeds=[0, 1], ablation=[0.3, 0.6], ablation_seeds=None))
    assert len(grid) == 10 and len(lines) == 9  # 4 method groups x 2 seeds + 0.3 x 2 seeds; one exists already
    assert not any("-n full_token-s0 " in x for x in lines)
    assert ("dvc exp run --queue -n fixed_model+self_evolving-p0.3-s1 -S select.strategy=global "
            "-S select.data_prop=0.3 -S seed=1 -S select.seed=1") in lines  # self-evolving: every stage
    # round fixed's methods only: the stages up to its evaluation
    assert "dvc exp run --queue -n random-s1 -S select.strategy=random -S select.data_prop=0.6 -S seed=1 " \
           "-S select.seed=1 evaluate@fixed" in lines


def test_grid_merges_only_methods_whose_params_contain_each_other():
    cfg = CompareCfg(seeds=[0], ablation=[0.5], methods={
        "a": MethodCfg(set={"x": 1}), "b": MethodCfg(set={"y": 2}), "c": MethodCfg(set={"x": 1, "z": 3})},
        ablation_methods=["a"], seed_params=["seed"], ablation_params=["p"], baseline=None,
                     ablation_seeds=[0])
    assert [(e.name, e.params) for e in experiment_grid(cfg)] == [
        ("a+c-s0", {"x": 1, "z": 3, "p": 0.6, "seed": 0}), ("b-s0", {"y": 2, "p": 0.6, "seed": 0}),
        ("a-p0.5-s0", {"x": 1, "p": 0.5, "seed": 0})]


def test_self_evolving_reads_the_last_round_then_the_summary():
    params = {"rounds.fixed.data": "x", "rounds.fixed.start": "base", "rounds.r0.data": "x", "rounds.r0.start": "base",
              "rounds.r1.data": "x", "rounds.r1.start": "r0", "rounds.r2.data": "x", "rounds.r2.start": "r1"}
    files = {"out/rounds/r0/evaluate/metrics.json": {"m": 0.0}, "out/rounds/r1/evaluate/metrics.json": {"m": 1.0}}
    assert method_metrics(Run("x", params, files), "evolve") == {"m": 1.0}  # r2 has not run: r1 is the last
    summary = [{"name": "r0", "m": 0.5}, {"name": "r1", "metrics": {"m": 0.75}}]
    assert method_metrics(Run("x", params, {}, rounds=summary), "evolve") == {"m": 0.75}
    assert method_metrics(Run("x", params, {}, rounds=[{"name": "r0", "m": 0.5}]), "evolve") == {"m": 0.5}
    assert method_metrics(Run("x", params, {}), "evolve") is None


@pytest.mark.slow
def test_summary_is_read_from_the_experiment_when_rounds_are_not_metrics(repo):
    from tokenclean.cli.compare import runs_from_exp_show, with_rounds

    show = json.loads(sh(["dvc", "exp", "show", "--json"], repo))
    run = next(r for r in runs_from_exp_show(show, ["global-s0"]))
    bare = Run(run.name, run.params,
               {"out/rounds/fixed/evaluate/metrics.json": run.metrics["out/rounds/fixed/evaluate/metrics.json"]},
               rev=run.rev)
    assert method_metrics(with_rounds(bare, repo), "evolve") == {"lm_eval/t_a/acc": 0.125}


def test_ablation_seeds_thin_only_the_ablation_grid_and_its_rows():
    cfg = CompareCfg(seeds=[0, 1], ablation=[0.3, 0.6], ablation_seeds=[1], methods={"a": MethodCfg(set={"x": 1})},
                     ablation_methods=["a"], seed_params=["seed"], ablation_params=["p"], baseline="a")
    assert [e.name for e in experiment_grid(cfg)] == ["a-s0", "a-s1", "a-p0.3-s1"]
    runs = [Run(f"r{seed}", {"x": 1, "p": 0.6, "seed": seed},
                {"out/rounds/fixed/evaluate/metrics.json": {"lm_eval/t/acc": seed}})
            for seed in (0, 1)]
    [row] = ablation(runs, cfg.model_copy(update={"ablation": [0.6]}))
    assert (row["a"], row["a_seeds"]) == (1, 1)  # only seed 1 counts, though the table has both
    assert main_table(runs, cfg).stat("a", "t").n == 2


@pytest.mark.slow
def test_experiments_come_from_the_python_api_as_dvc_exp_show_prints_them(repo):
    from datetime import datetime

    from tokenclean.cli.compare import experiments

    printed = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json"], cwd=repo, check=True,
                             capture_output=True, text=True).stdout
    from tokenclean.cli.compare import runs_from_exp_show

    as_json = json.loads(json.dumps(experiments(repo), default=lambda v: v.isoformat() if isinstance(v, datetime)
                                    else str(v)))
    key = lambda run: (run.name, json.dumps(run.params, sort_keys=True), json.dumps(run.metrics, sort_keys=True))  # noqa: E731
    api, cli_runs = (sorted(map(key, runs_from_exp_show(show, []))) for show in (as_json, json.loads(printed)))
    assert len(api) == 4 and api == cli_runs


def test_paired_difference_has_a_student_t_interval():
    d = paired([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])  # differences 1, 2, 3: mean 2, sd 1, SE 1/sqrt(3)
    half = 4.302653 / 3**0.5  # t(0.975) at 2 degrees of freedom, from a table
    assert (d.mean, d.n) == (2.0, 3) and d.se == pytest.approx(3**-0.5)
    assert (d.low, d.high) == (pytest.approx(2 - half), pytest.approx(2 + half))
    assert paired([0.5], [0.25]) == Diff(0.25, None, None, None, 1)


def test_docs_blocks_take_the_generated_tables(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n<!-- compare:r/compare.md -->\nold\n<!-- /compare:r/compare.md -->\noutro\n")
    assert fill_docs(doc, {"r/compare.md": "| new |\n", "r/ablation.md": "| a |\n"}) == ["r/compare.md"]
    assert doc.read_text() == "intro\n<!-- compare:r/compare.md -->\n| new |\n<!-- /compare:r/compare.md -->\noutro\n"


@pytest.mark.parametrize("doc", ["README.md", "docs/evaluation.md"])
def test_docs_show_the_committed_results_untouched(doc):
    """Every table block in the docs is the file it names, as `compare --docs` wrote it."""
    root = Path(__file__).resolve().parents[1]
    blocks = re.findall(r"<!-- compare:(\S+) -->\n(.*?)<!-- /compare:\1 -->", (root / doc).read_text(), re.S)
    assert blocks, f"{doc} shows no generated table"
    for name, text in blocks:
        assert text == (root / name).read_text(), f"{doc}: the {name} block differs from the file"


def test_baseline_must_be_a_method():
    with pytest.raises(ValueError, match="baseline 'nope' is not in methods"):
        CompareCfg(baseline="nope")


def one_task_runs(values: dict[int, float], params: dict) -> list[Run]:
    return [Run(f"r{s}", {**params, "seed": s}, {"out/rounds/fixed/evaluate/metrics.json": {"lm_eval/t/acc": v}})
            for s, v in values.items()]


def test_seeds_needed_follow_the_spread_in_steps_up_to_the_cap():
    from tokenclean.evaluation.grid import seeds_needed

    cfg = CompareCfg(seeds=[0, 1, 2, 3], methods={"wide": MethodCfg(set={"x": 1}), "tight": MethodCfg(set={"x": 2})},
                     ablation_methods=[], seed_params=["seed"], ablation_params=["p"], baseline=None)
    runs = one_task_runs({0: 0.0, 1: 0.2, 2: 0.0, 3: 0.2}, {"x": 1})  # std 0.11547, SE 0.0577
    runs += one_task_runs({0: 0.50, 1: 0.51, 2: 0.50, 3: 0.51}, {"x": 2})  # SE 0.0029: within 0.03
    table = main_table(runs, cfg)
    # (0.11547 / 0.03)^2 = 14.8 -> 15 seeds, but at most twice the 4 it has; then the cap
    assert seeds_needed(table, ["Average"], 0.03, 100) == {"wide": 8}
    assert seeds_needed(table, ["Average"], 0.05, 100) == {"wide": 6}  # (0.11547 / 0.05)^2 = 5.3
    assert seeds_needed(table, ["Average"], 0.03, 5) == {"wide": 5}
    assert seeds_needed(table, ["Average"], 0.06, 100) == {}  # SE 0.0577 is within 0.06


def test_extra_seeds_continue_the_list_and_serve_a_whole_group():
    from tokenclean.evaluation.grid import extra_experiments

    cfg = CompareCfg(seeds=[0, 1])
    have = {m: [0, 1] for m in cfg.methods} | {"random": [0, 1, 2]}
    new = extra_experiments(cfg, {"self_evolving": 4, "random": 4}, have)
    assert [e.name for e in new] == ["random-s3", "fixed_model+self_evolving-s2", "fixed_model+self_evolving-s3"]
    assert new[1].params == {"select.strategy": "global", "select.data_prop": 0.6, "seed": 2, "select.seed": 2}
    assert new[0].targets == ("evaluate@fixed",) and new[1].targets == ()
    # the main table counts the added seeds (after compare.seeds), not a stray seed between or below them
    runs = one_task_runs({-1: 0.9, 0: 0.1, 1: 0.2, 3: 0.4}, {"select.strategy": "full"})
    cfg = CompareCfg(seeds=[0, 2], ablation=[], free_generation=None)
    assert main_table(runs, cfg).seeds["full_token"] == [0, 3]


def test_until_se_adds_seeds_until_the_standard_error_is_within_target(monkeypatch, capsys):
    """The loop of `compare --queue --run --until-se`, on a fake DVC whose experiments finish when run."""
    import argparse

    from tokenclean.cli import compare as C

    def value(name: str, seed: int) -> float:  # full-token alternates 0.0 / 0.2 (std ~0.1); random is steady
        return {"full_token": 0.2 * (seed % 2), "random": 0.5 + 0.001 * seed}[name.rsplit("-s", 1)[0]]

    done, queued = [], []

    def entry(name: str) -> dict:  # one finished experiment as `dvc exp show --json` lists it
        method, seed = name.rsplit("-s", 1)
        params = {"select": {"strategy": {"full_token": "full"}.get(method, method), "data_prop": 0.6},
                  "seed": int(seed)}
        metrics = {"lm_eval/t/acc": value(name, int(seed))}
        data = {"params": {"params.yaml": {"data": params}},
                "metrics": {"out/rounds/fixed/evaluate/metrics.json": {"data": metrics}}}
        return {"name": name, "revs": [{"name": name, "data": data}]}

    def show():
        return [{"rev": "workspace", "experiments": [entry(n) for n in done]}]

    monkeypatch.setattr(C, "experiments", lambda repo, all_commits=False: show())
    monkeypatch.setattr(C, "run_dvc", lambda *args, repo: queued.append(args[args.index("-n") + 1]))
    monkeypatch.setattr(C, "run_queue", lambda repo, jobs: (done.extend(queued), queued.clear()))
    cfg = CompareCfg(seeds=[0, 1, 2], methods={"full_token": MethodCfg(set={"select.strategy": "full"}),
                                               "random": MethodCfg(set={"select.strategy": "random"})},
                     ablation=[], ablation_methods=[], free_generation=None)
    done += [f"{m}-s{s}" for m in cfg.methods for s in cfg.seeds]
    C.add_seeds(cfg, Path("."), argparse.Namespace(until_se=3.0, max_seeds=100, jobs=1, all_commits=False))
    seeds = main_table(C.runs_from_exp_show(show(), []), cfg).seeds
    assert seeds["random"] == [0, 1, 2]  # already within 3 points
    # 0.0/0.2 alternating: std ~0.10. 3 seeds -> 6 (at most double) -> 12 (std 0.1044, SE 0.0302, still above)
    # -> 13 (ceil((0.1044 / 0.03)^2); std 0.1038, SE 0.0288)
    assert seeds["full_token"] == list(range(13))
    assert main_table(C.runs_from_exp_show(show(), []), cfg).stat("full_token", "Average").se <= 0.03
    assert capsys.readouterr().err.count("--until-se 3: seeds wanted") == 3
