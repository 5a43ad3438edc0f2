"""The paper-style comparison of cleaning methods, from finished runs: methods by tasks with an
average, mean ± standard deviation over seeds, and the token-share ablation.

A run is one experiment of the pipeline: its params (dotted keys) and its metrics files. A
method (``compare.methods`` in params) is the params its runs have and the file its metrics
come from: ``fixed`` reads round ``fixed``'s ``out/rounds/fixed/evaluate/metrics.json``,
``evolve`` the last round's (the last of ``rounds`` with a metrics file, else the last entry of
the rounds summary). Reading runs out of DVC is the command line's job
(:mod:`tokenclean.cli.compare`); this module only computes.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from tokenclean.layout import FIXED, round_paths

FIXED_METRICS = round_paths(FIXED).metrics.as_posix()
LM_EVAL = "lm_eval/"
AVERAGE = "Average"


@dataclass(frozen=True)
class Run:
    name: str
    params: dict[str, Any]  # dotted keys: {"select.strategy": "global", ...}
    metrics: dict[str, dict[str, float]]  # metrics file -> flat metrics
    rev: str = ""  # git revision of the experiment ('workspace' for the workspace)
    rounds: list[dict] | None = field(default=None, compare=False)  # the rounds summary, when it could be read


def flatten(nested: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in nested.items():
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def same(a, b) -> bool:
    """Param equality across YAML's types: 0.3 == "0.3", 1 == 1.0."""
    try:
        return math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-12)
    except (TypeError, ValueError):
        return str(a) == str(b)


def has(run: Run, values: dict) -> bool:
    return all(k in run.params and same(run.params[k], v) for k, v in values.items())


def round_names(run: Run) -> list[str]:
    """Rounds in params order (``rounds.<name>.data`` keys)."""
    names = [k.split(".")[1] for k in run.params if k.startswith("rounds.") and k.count(".") >= 2]
    return list(dict.fromkeys(names))


def last_chain(run: Run) -> list[str]:
    """The last round, then the round it started from, and so on back to the base."""
    names = round_names(run)
    chain = names[-1:]
    while chain and run.params.get(f"rounds.{chain[-1]}.start") in names and len(chain) <= len(names):
        chain.append(run.params[f"rounds.{chain[-1]}.start"])
    return chain


def method_metrics(run: Run, source: str) -> dict[str, float] | None:
    """``fixed``: round fixed's metrics. ``evolve``: the last round's, or those of the latest round
    of its chain that has them (a round still to run), else the last row of the rounds summary."""
    if source == "fixed":
        return run.metrics.get(FIXED_METRICS)
    for name in last_chain(run):
        found = run.metrics.get(round_paths(name).metrics.as_posix())
        if found:
            return found
    last = next((r for r in reversed(run.rounds or []) if isinstance(r, dict)), None)
    if last is None:
        return None
    inner = last.get("metrics")  # tolerate both {"metrics": {...}} rows and flat rows
    return {k: v for k, v in (inner if isinstance(inner, dict) else last).items() if isinstance(v, (int, float))}


def task_scores(metrics: dict[str, float], metric: str) -> dict[str, float]:
    """Per lm-eval task: ``metric`` if it reports it, else its first metric in name order."""
    per_task: dict[str, dict[str, float]] = {}
    for key, v in metrics.items():
        if key.startswith(LM_EVAL) and key.count("/") >= 2 and isinstance(v, (int, float)):
            _, task, name = key.split("/", 2)
            per_task.setdefault(task, {})[name] = float(v)
    return {t: m[metric] if metric in m else m[sorted(m)[0]] for t, m in per_task.items()}


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean, and the sample standard deviation (n - 1), None for a single seed."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def method_runs(runs: list[Run], method, cfg, data_prop: float, extra: tuple[str, ...] = (),
                seeds: list[int] | None = None) -> tuple[dict, list[str]]:
    """Seed -> {column: value} of the runs of ``method`` at token share ``data_prop``, and notes.

    A run belongs to the method when it has the method's params and every ablation param it
    has equals ``data_prop``; only ``seeds`` count (default: ``cfg.seeds`` and the seeds after them that
    ``--until-se`` adds, :func:`main_seed`), the first run of a seed wins.
    """
    found, notes = {}, []
    for run in runs:
        seed = run.params.get(cfg.seed_params[0])
        at_share = all(same(run.params[k], data_prop) for k in cfg.ablation_params if k in run.params)
        counted = main_seed(cfg, seed) if seeds is None else any(same(seed, s) for s in seeds)
        if not (has(run, method.set) and at_share) or not counted:
            continue
        metrics = method_metrics(run, method.metrics)
        if metrics is None:
            notes.append(f"{run.name}: no {method.metrics} metrics, left out")
        elif seed in found:
            notes.append(f"{run.name}: a second run of seed {seed}, left out")
        else:
            found[seed] = {**task_scores(metrics, cfg.metric), **{k: metrics[k] for k in extra if k in metrics}}
    return found, notes


def main_seed(cfg, seed) -> bool:
    """Whether the main table counts ``seed``: one of ``cfg.seeds``, or an integer after all of them (the
    seeds ``tokenclean compare --until-se`` adds, :func:`tokenclean.evaluation.grid.extra_experiments`)."""
    return any(same(seed, s) for s in cfg.seeds) or (isinstance(seed, int) and seed > max(cfg.seeds))


def with_average(per_seed: dict, tasks: list[str]) -> dict:
    """Each seed's values plus the mean over ``tasks`` (only for a seed that has all of them)."""
    out = {}
    for seed, values in per_seed.items():
        have = [values[t] for t in tasks if t in values]
        out[seed] = {**values, **({AVERAGE: statistics.fmean(have)} if tasks and len(have) == len(tasks) else {})}
    return out


def task_order(runs: list[Run], per_method: dict) -> list[str]:
    """The lm-eval tasks seen, in the order of the first run's evaluate.lm_eval.tasks, others sorted after."""
    seen = {k for per_seed in per_method.values() for values in per_seed.values() for k in values}
    lists = (r.params.get(k) for r in runs for k in ("evaluate.lm_eval.tasks", "profile.evaluate.lm_eval.tasks"))
    listed = next((x for x in lists if isinstance(x, list)), [])
    return [t for t in listed if t in seen] + sorted(seen - set(listed))


@dataclass(frozen=True)
class Stat:
    """A column's mean over seeds, its sample standard deviation (n - 1) and standard error (None for one seed)."""

    mean: float
    std: float | None
    n: int

    @property
    def se(self) -> float | None:
        return None if self.std is None else self.std / math.sqrt(self.n)

    @classmethod
    def of(cls, values: list[float]) -> Stat:
        return cls(*mean_std(values), len(values))


@dataclass(frozen=True)
class Diff:
    """A method minus the baseline, paired by seed: mean, standard error, 95% t interval (None for one seed)."""

    mean: float
    se: float | None
    low: float | None
    high: float | None
    n: int


def paired(values: list[float], baseline: list[float]) -> Diff:
    """The mean difference of paired values, with a 95% Student t interval over the n - 1 degrees of freedom:
    with 5 seeds the half-width is 2.78 standard errors, not the normal 1.96."""
    diffs = [a - b for a, b in zip(values, baseline, strict=True)]
    mean, std = mean_std(diffs)
    if std is None:
        return Diff(mean, None, None, None, 1)
    from scipy.stats import t

    se = std / math.sqrt(len(diffs))
    half = float(t.ppf(0.975, len(diffs) - 1)) * se
    return Diff(mean, se, mean - half, mean + half, len(diffs))


@dataclass
class Table:
    columns: list[str]  # lm-eval tasks, Average, free generation, then extra metrics
    values: dict[str, dict]  # method -> seed -> column -> value
    notes: list[str]
    baseline: str | None = None  # the method the others are paired with

    @property
    def seeds(self) -> dict[str, list]:
        return {name: sorted(per_seed) for name, per_seed in self.values.items()}

    def stat(self, method: str, column: str) -> Stat | None:
        values = [v[column] for v in self.values[method].values() if column in v]
        return Stat.of(values) if values else None

    def diff(self, method: str, column: str) -> Diff | None:
        """``method`` minus the baseline on the seeds both have."""
        base = self.values.get(self.baseline or "", {})
        seeds = [s for s, v in self.values[method].items() if column in v and column in base.get(s, {})]
        if not seeds or method == self.baseline:
            return None
        return paired([self.values[method][s][column] for s in seeds], [base[s][column] for s in seeds])


def main_table(runs: list[Run], cfg, extra: tuple[str, ...] = ()) -> Table:
    """Methods by tasks at the main token share ``cfg.data_prop``, per seed; the free-generation metric
    (``cfg.free_generation``) and ``extra`` metrics beside the tasks, outside their Average."""
    shown = tuple(dict.fromkeys(([cfg.free_generation] if cfg.free_generation else []) + list(extra)))
    per_method, notes = {}, []
    for name, method in cfg.methods.items():
        per_method[name], why = method_runs(runs, method, cfg, cfg.data_prop, shown)
        notes += why
    tasks = [t for t in task_order(runs, per_method) if t not in shown]
    present = [k for k in shown if any(k in v for p in per_method.values() for v in p.values())]
    for name, per_seed in per_method.items():
        per_method[name] = with_average(per_seed, tasks)
        if len(per_seed) < len(cfg.seeds):
            notes.append(f"{name}: {len(per_seed)} of {len(cfg.seeds)} seeds" + ", left out" * (not per_seed))
    baseline = cfg.baseline if cfg.baseline in per_method else None
    return Table(tasks + [AVERAGE] + present, per_method, notes, baseline)


def ablation(runs: list[Run], cfg, key: str = AVERAGE) -> list[dict]:
    """One row per token share: each ablation method's mean, std and standard error of ``key`` over seeds."""
    rows = []
    for share in cfg.ablation:
        row: dict[str, Any] = {"data_prop": share}
        for name in cfg.ablation_methods:
            per_seed, _ = method_runs(runs, cfg.methods[name], cfg, share, (key,) if key != AVERAGE else (),
                                      cfg.ablation_seed_list)
            tasks = sorted({k for v in per_seed.values() for k in v} - {key})
            values = [v[key] for v in with_average(per_seed, tasks).values() if key in v]
            stat = Stat.of(values) if values else None
            row.update({name: stat and stat.mean, f"{name}_std": stat and stat.std, f"{name}_se": stat and stat.se,
                        f"{name}_seeds": len(values)})
        rows.append(row)
    return rows


def _num(x: float, scale: float, digits: int, sign: bool = False) -> str:
    return f"{x * scale:{'+' if sign else ''}.{digits}f}"


def _cell(stat: Stat | None, scale: float, digits: int) -> str:
    if stat is None:
        return ""
    return _num(stat.mean, scale, digits) + ("" if stat.se is None else f" ± {_num(stat.se, scale, digits)}")


def _diff_cell(d: Diff | None, scale: float, digits: int) -> str:
    if d is None:
        return ""
    if d.low is None:
        return _num(d.mean, scale, digits, sign=True)
    return f"{_num(d.mean, scale, digits, sign=True)} [{_num(d.low, scale, digits)}, {_num(d.high, scale, digits)}]"


def _scale(column: str, extra: tuple[str, ...], scale: float, digits: int) -> tuple[float, int]:
    return (1.0, 3) if column in extra else (scale, digits)  # extra metrics keep their own units


def to_markdown(table: Table, extra: tuple[str, ...] = (), scale: float = 100.0, digits: int = 2,
                labels: dict[str, str] | None = None) -> str:
    """The paper's layout: a row per method, scores in percent as mean ± standard error over seeds, the best
    mean of each column in bold; then each method minus the baseline, paired by seed, with a 95% interval."""
    labels = labels or {}
    head = "| Method | " + " | ".join(labels.get(c, c) for c in table.columns) + " | Seeds |"
    rule = "|---|" + "---:|" * (len(table.columns) + 1)
    stats = {m: {c: table.stat(m, c) for c in table.columns} for m, v in table.values.items() if v}
    best = {c: max((s[c].mean for s in stats.values() if s[c]), default=None) for c in table.columns}
    lines = [head, rule]
    for name, cells in stats.items():
        row = []
        for c in table.columns:
            text = _cell(cells[c], *_scale(c, extra, scale, digits))
            bold = cells[c] and c not in extra and cells[c].mean == best[c] and len(stats) > 1
            row.append(f"**{text}**" if bold else text)
        lines.append(f"| {name} | " + " | ".join(row) + f" | {len(table.seeds[name])} |")
    if table.baseline and table.values.get(table.baseline):
        lines += ["", f"Minus {table.baseline}, paired by seed: mean [95% t interval]", "", head, rule]
        for name in table.values:
            if name != table.baseline and table.values[name]:
                diffs = {c: table.diff(name, c) for c in table.columns}
                row = [_diff_cell(diffs[c], *_scale(c, extra, scale, digits)) for c in table.columns]
                n = max((d.n for d in diffs.values() if d), default=0)
                lines.append(f"| {name} | " + " | ".join(row) + f" | {n} |")
    return "\n".join(lines) + "\n"


def ablation_markdown(rows: list[dict], methods: list[str], scale: float = 100.0, digits: int = 2) -> str:
    """The ablation rows as a table: a row per token share, each method's mean ± standard error."""
    lines = ["| data_prop | " + " | ".join(methods) + " |", "|---:|" + "---:|" * len(methods)]
    for r in rows:
        cells = [_cell(Stat(r[m], r[f"{m}_std"], r[f"{m}_seeds"]) if r[m] is not None else None, scale, digits)
                 for m in methods]
        lines.append(f"| {r['data_prop']:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv_rows(table: Table) -> list[dict]:
    """One row per method: per column the mean, sample std, standard error, and the paired difference to the
    baseline with its 95% interval (unscaled)."""
    rows = []
    for name in table.values:
        row: dict[str, Any] = {"method": name, "seeds": " ".join(str(s) for s in table.seeds[name])}
        for c in table.columns:
            stat, diff = table.stat(name, c), table.diff(name, c)
            row.update({f"{c}_mean": stat and stat.mean, f"{c}_std": stat and stat.std, f"{c}_se": stat and stat.se})
            if table.baseline:
                row.update({f"{c}_diff": diff and diff.mean, f"{c}_diff_low": diff and diff.low,
                            f"{c}_diff_high": diff and diff.high})
        rows.append(row)
    return rows
