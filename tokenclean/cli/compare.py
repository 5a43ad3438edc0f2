"""``tokenclean compare``: the paper-style table of cleaning methods from DVC experiments.

    tokenclean compare                    # every finished experiment of HEAD -> table + files
    tokenclean compare --queue --run      # first queue the missing grid (methods x seeds, the
                                          # data_prop ablation) and run it
    tokenclean compare --queue --dry-run  # print the `dvc exp run --queue` commands only
    tokenclean compare --queue --run --until-se 3   # then add seeds to each method whose standard error
                                          # (lm-eval Average, free generation) is above 3 points, and run them

    tokenclean compare --docs README.md   # also put the tables into the marked blocks of these files

Methods, seeds and the ablation come from the ``compare`` section of params (tokenclean/config.py).
Writes ``<out>/compare.md`` and ``compare.csv`` (methods by tasks, mean ± standard error over seeds, each
method minus the baseline paired by seed), ``<out>/ablation.csv`` (the metric against data_prop, for a DVC
plot), ``ablation.md`` and ``ablation.svg``. ``--docs`` replaces what lies between ``<!-- compare:FILE -->``
and ``<!-- /compare:FILE -->`` (FILE: ``results/compare.md`` or ``results/ablation.md``, under ``--out``) with
that file, so the tables in the docs are always generated, never retyped.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from tokenclean.cli import described

# The comparison's modules are imported by the commands that use them, not here: `--help` stays fast.
if TYPE_CHECKING:
    from tokenclean.evaluation.comparison import Run

AVERAGE = "Average"  # the column of the mean over tasks (tokenclean.evaluation.comparison.AVERAGE)
NOT_DONE = {"queued", "running", "failed"}


def run_dvc(*args: str, repo: Path) -> str:
    """``dvc <args>`` from this interpreter's environment, whether or not it is on PATH."""
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True)
    if proc.returncode:
        raise ValueError(f"`dvc {' '.join(args)}` failed in {repo}:\n{proc.stderr.strip()[-2000:]}")
    return proc.stdout


def experiments(repo: Path, all_commits: bool = False) -> list[dict]:
    """HEAD's experiments (or every commit's) as DVC's Python API collects them: baselines, each with its
    experiments, in the structure `dvc exp show --json` prints, with no command run and no output parsed."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        return [state.dumpd() for state in dvc_repo.experiments.show(all_commits=all_commits)]


def _run_of(entry: dict, fallback_name: str) -> Run | None:
    from tokenclean.evaluation.comparison import Run, flatten

    data = entry.get("data") or {}
    metrics = {path: m["data"] for path, m in (data.get("metrics") or {}).items()
               if isinstance(m, dict) and m.get("data")}
    if not metrics:
        return None
    params = {}
    for values in (data.get("params") or {}).values():
        params.update(flatten(values.get("data") or {}))
    return Run(entry.get("name") or fallback_name, params, metrics, rev=entry.get("rev", ""))


def _named(wanted: list[str], entry: dict) -> bool:
    rev = entry.get("rev", "")
    return any(w in (entry.get("name"), rev) or (len(w) >= 4 and rev.startswith(w)) for w in wanted)


def runs_from_exp_show(show: list[dict], wanted: list[str]) -> list[Run]:
    """Finished experiments of :func:`experiments` (or a saved ``dvc exp show --json``): all of them, or those
    named in ``wanted``
    (an experiment name, a commit's branch name or a revision prefix; 'workspace' too)."""
    runs = []
    for baseline in show:
        if wanted and _named(wanted, baseline):  # a commit or the workspace only when asked for by name
            runs.append(_run_of(baseline, baseline.get("rev", "")[:7]))
        for exp in baseline.get("experiments") or []:
            if ((exp.get("executor") or {}).get("state") or "success") in NOT_DONE:
                continue
            for entry in exp.get("revs") or []:
                if not wanted or _named(wanted, {**entry, "name": entry.get("name") or exp.get("name")}):
                    runs.append(_run_of({**entry, "name": entry.get("name") or exp.get("name")},
                                        entry.get("rev", "")[:7]))
    return [r for r in runs if r is not None]


def with_rounds(run: Run, repo: Path) -> Run:
    """Attach the rounds summary to a run that has rounds but no per-round metrics files."""
    from tokenclean.evaluation.comparison import last_chain
    from tokenclean.layout import SUMMARY, round_paths

    rounds = last_chain(run)
    if not rounds or any(round_paths(r).metrics.as_posix() in run.metrics for r in rounds):
        return run
    try:
        import dvc.api

        rev = None if run.rev in ("", "workspace") else run.rev
        text = dvc.api.read((SUMMARY / "rounds.json").as_posix(), repo=str(repo), rev=rev)
        summary = json.loads(text)
    except Exception:  # noqa: BLE001 - a missing or unreadable summary only means no self-evolving numbers
        return run
    return replace(run, rounds=summary if isinstance(summary, list) else summary.get("rounds"))


def queue(cfg, repo: Path, dry_run: bool, existing: set[str]) -> list[str]:
    """``dvc exp run --queue`` for each experiment of the grid not there yet; returns the names."""
    from tokenclean.evaluation.grid import experiment_grid

    queued = []
    for exp in experiment_grid(cfg):
        if exp.name not in existing:
            queue_one(exp, repo, dry_run)
            queued.append(exp.name)
    return queued


def queue_one(exp, repo: Path, dry_run: bool = False) -> None:
    """``dvc exp run --queue`` of one planned experiment (:class:`tokenclean.evaluation.grid.Experiment`), printed."""
    sets = [a for k, v in exp.params.items() for a in ("-S", f"{k}={v}")]
    args = ["exp", "run", "--queue", "-n", exp.name, *sets, *exp.targets]
    print("dvc " + " ".join(args))
    if not dry_run:
        run_dvc(*args, repo=repo)


def experiment_names(show: list[dict]) -> set[str]:
    return {e.get("name") for b in show for e in b.get("experiments") or []} - {None}


def write_csv(rows: list[dict], path: Path) -> None:
    from tokenclean.io import write_csv as write

    cell = lambda v: "" if v is None else round(v, 8) if isinstance(v, float) else v  # noqa: E731 - no float noise
    write([{k: cell(v) for k, v in r.items()} for r in rows], list(rows[0]) if rows else [], path)


PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]


def ablation_svg(rows: list[dict], cfg, key: str) -> str:
    """The ablation as a standalone SVG line chart (lm-eval averages in percent)."""
    from tokenclean.audit.svg import line_chart

    scale = 100 if key == AVERAGE else 1
    series = {m: [None if r[m] is None else r[m] * scale for r in rows] for m in cfg.ablation_methods}
    colors = dict(zip(cfg.ablation_methods, PALETTE * 2))
    seeds = cfg.ablation_seed_list
    title = (f"{key}{' (%)' if scale == 100 else ''} against data_prop, "
             f"seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))}")
    return line_chart([r["data_prop"] for r in rows], series, colors, title,
                      "data_prop (share of response tokens kept)", y_range=(0, 100) if scale == 100 else None)


def report(runs: list[Run], cfg, out: Path, extra: tuple[str, ...], ablation_key: str) -> str:
    """Write compare.md, compare.csv, ablation.csv and ablation.svg under ``out``; return the Markdown table."""
    from tokenclean.evaluation.comparison import ablation, ablation_markdown, main_table, to_csv_rows, to_markdown

    table = main_table(runs, cfg, extra)
    labels = {cfg.free_generation: f"{cfg.free_generation} (free generation)"} if cfg.free_generation else {}
    text = to_markdown(table, extra, labels=labels)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(text)
    write_csv(to_csv_rows(table), out / "compare.csv")
    rows = ablation(runs, cfg, ablation_key)
    write_csv(rows, out / "ablation.csv")
    scale = 100 if ablation_key == AVERAGE else 1
    (out / "ablation.md").write_text(ablation_markdown(rows, cfg.ablation_methods, scale, 2 if scale == 100 else 3))
    (out / "ablation.svg").write_text(ablation_svg(rows, cfg, ablation_key))
    notes = [f"{len(runs)} runs; scores in percent ({cfg.metric} where an lm-eval task reports it), "
             f"mean ± standard error over seeds, methods at data_prop {cfg.data_prop:g}"] + table.notes
    return text + "".join(f"note: {n}\n" for n in notes)


def fill_docs(path: Path, tables: dict[str, str]) -> list[str]:
    """Replace each ``<!-- compare:FILE -->`` ... ``<!-- /compare:FILE -->`` block of ``path`` with
    ``tables[FILE]`` (FILE: a written table's path from the repository root, e.g. ``results/compare.md``); the
    files filled in. A file without such blocks is left alone."""
    text, filled = path.read_text(), []
    for name, table in tables.items():
        block = re.compile(rf"(<!-- compare:{re.escape(name)} -->\n).*?(<!-- /compare:{re.escape(name)} -->)", re.S)
        text, n = block.subn(lambda m: m.group(1) + table + m.group(2), text)  # noqa: B023 - used at once
        filled += [name] * bool(n)
    path.write_text(text)
    return filled


def run_queue(repo: Path, jobs: int) -> None:
    ran = subprocess.run([sys.executable, "-m", "dvc", "exp", "run", "--run-all", "-j", str(jobs)], cwd=repo)
    if ran.returncode:  # the finished runs still make a table; the failed ones show up as missing seeds
        print("some queued experiments failed (see `dvc queue status`); comparing the finished ones", file=sys.stderr)


def add_seeds(cfg, repo: Path, args) -> None:
    """Until every method's standard error of the lm-eval Average and of free generation is at most
    ``--until-se`` points (or it has ``--max-seeds``): queue more seeds where it is not, and run them.

    The spread is re-estimated after each batch; a method's seeds at most double per batch."""
    from tokenclean.evaluation.comparison import main_table
    from tokenclean.evaluation.grid import extra_experiments, seeds_needed

    columns = [AVERAGE] + [cfg.free_generation] * bool(cfg.free_generation)
    while True:
        show = experiments(repo, args.all_commits)  # -A: seeds run on earlier commits count too
        table = main_table(runs_from_exp_show(show, []), cfg)
        needed = seeds_needed(table, columns, args.until_se / 100, args.max_seeds)
        existing = experiment_names(show)
        new = [e for e in extra_experiments(cfg, needed, table.seeds) if e.name not in existing]
        if not new:  # every method within target, at --max-seeds, or its next seeds already tried (failed)
            return
        print(f"--until-se {args.until_se:g}: seeds wanted {needed}; queueing {len(new)} experiments", file=sys.stderr)
        for exp in new:
            queue_one(exp, repo)
        run_queue(repo, args.jobs)


def command(args) -> int:
    from tokenclean.params_file import load_params

    repo = Path(args.repo)
    cfg = load_params(repo / args.params).compare
    show = json.loads(Path(args.from_json).read_text()) if args.from_json else None
    if args.queue or args.run:
        show = show or experiments(repo)
        if args.queue:
            print(f"queued {len(queue(cfg, repo, args.dry_run, experiment_names(show)))} experiments", file=sys.stderr)
        if args.run and not args.dry_run:
            run_queue(repo, args.jobs)
            if args.until_se is not None:
                add_seeds(cfg, repo, args)
            show = None  # read again: the runs just finished
        if args.dry_run or not args.run:
            return 0
    show = show or experiments(repo, args.all_commits)
    runs = [with_rounds(r, repo) for r in runs_from_exp_show(show, args.experiments)]
    print(report(runs, cfg, repo / args.out, tuple(args.extra), args.ablation_metric), end="")
    out = (repo / args.out).resolve()
    rel = out.relative_to(repo.resolve()).as_posix() if out.is_relative_to(repo.resolve()) else out.as_posix()
    tables = {f"{rel}/{name}.md": (out / f"{name}.md").read_text() for name in ("compare", "ablation")}
    for doc in args.docs:
        filled = fill_docs(Path(doc), tables)
        print(f"{doc}: {', '.join(filled) or 'no <!-- compare:FILE --> block'} filled", file=sys.stderr)
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("compare", help="methods by tasks from DVC experiments (mean ± std over seeds)",
                              description=described(__doc__),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiments", nargs="*", help="experiment names or revisions (default: every finished experiment)")
    p.add_argument("--repo", default=".", help="repository root (default: .)")
    p.add_argument("--params", default="params.yaml", help="params file with the compare section, relative to --repo")
    p.add_argument("--out", default="results",
                   help="folder for compare.md, compare.csv, ablation.csv (default: results)")
    p.add_argument("-A", "--all-commits", action="store_true", help="experiments of every commit, not only HEAD's")
    p.add_argument("--extra", action="append", default=[], metavar="KEY",
                   help="also show this metric of the method's metrics file (e.g. accuracy); not averaged")
    p.add_argument("--ablation-metric", default=AVERAGE, metavar="KEY",
                   help=f"what ablation.csv plots: {AVERAGE} (default), a task name or a metric key")
    p.add_argument("--queue", action="store_true",
                   help="queue the experiments of the grid whose names do not exist yet (queued, finished or failed: "
                        "`dvc exp remove` a failed one to queue it again)")
    p.add_argument("--run", action="store_true", help="run the queue (dvc exp run --run-all), then compare")
    p.add_argument("--jobs", type=int, default=1, help="experiments run at once by --run (default: 1)")
    p.add_argument("--until-se", type=float, metavar="POINTS",
                   help="with --run: then keep adding seeds (after compare.seeds) to each method whose standard "
                        "error of the lm-eval Average or of free generation is above POINTS (percent points)")
    p.add_argument("--max-seeds", type=int, default=100, help="with --until-se: at most this many seeds a method")
    p.add_argument("--docs", nargs="+", default=[], metavar="FILE",
                   help="put compare.md and ablation.md into the <!-- compare:OUT/compare.md --> blocks of these files")
    p.add_argument("--dry-run", action="store_true", help="with --queue: print the commands, queue nothing")
    p.add_argument("--from-json", metavar="FILE",
                   help="read `dvc exp show --json` output from FILE instead of running it")
    p.set_defaults(func=command)

