"""The experiments a comparison needs: the grid of methods x seeds and the token-share ablation
(:func:`experiment_grid`), and the further seeds that bring each method's standard error within a
target (:func:`seeds_needed`, :func:`extra_experiments`). Queuing them is the command line's job
(:mod:`tokenclean.cli.compare`); this module only plans.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tokenclean.evaluation.comparison import Table, same
from tokenclean.layout import FIXED


def _method_groups(cfg, names: list[str]) -> list[tuple[list[str], dict]]:
    """Methods one experiment can serve: one's params contain the other's (fixed_model inside
    self_evolving: a global run also runs the rounds). Disjoint params are never merged, as
    that would change a param one of the methods leaves at its default."""
    groups: list[tuple[list[str], dict]] = []
    for name in names:
        s = dict(cfg.methods[name].set)
        for members, params in groups:
            inside = lambda a, b: all(k in b and same(b[k], v) for k, v in a.items())  # noqa: E731
            if inside(s, params) or inside(params, s):
                members.append(name)
                params.update(s)
                break
        else:
            groups.append(([name], s))
    return groups


@dataclass(frozen=True)
class Experiment:
    name: str
    params: dict  # dotted keys, as `dvc exp run -S` sets them
    targets: tuple[str, ...] = ()  # the stages it needs; () runs the whole pipeline


def targets(cfg, members: list[str]) -> tuple[str, ...]:
    """What the methods served by one experiment read: round fixed's metrics only need the stages up to
    ``evaluate@fixed`` (about half the pipeline on the default data: warm-up and fixed round, no chunks); a
    method of the last round needs them all."""
    return (f"evaluate@{FIXED}",) if all(cfg.methods[m].metrics == "fixed" for m in members) else ()


def experiment_grid(cfg) -> list[Experiment]:
    """Every experiment the comparison needs: the methods at ``cfg.data_prop`` and the ablation methods at
    each share, once per seed (its ``ablation_seeds``); identical params are queued once."""
    specs, seen = [], set()
    plan = [(g, cfg.data_prop, "", cfg.seeds) for g in _method_groups(cfg, list(cfg.methods))]
    plan += [(g, share, f"-p{share:g}", cfg.ablation_seed_list)
             for share in cfg.ablation for g in _method_groups(cfg, cfg.ablation_methods)]
    for (members, params), share, tag, seeds in plan:
        for seed in seeds:
            exp = _experiment(cfg, members, params, share, tag, seed)
            key = frozenset((k, str(v)) for k, v in exp.params.items())
            if key not in seen:
                seen.add(key)
                specs.append(exp)
    return specs


def _experiment(cfg, members: list[str], params: dict, share: float, tag: str, seed: int) -> Experiment:
    full = {**params, **{k: share for k in cfg.ablation_params}, **{k: seed for k in cfg.seed_params}}
    return Experiment(f"{'+'.join(members)}{tag}-s{seed}", full, targets(cfg, members))


def seeds_needed(table: Table, columns: list[str], target: float, max_seeds: int) -> dict[str, int]:
    """Method -> the seeds its means need for a standard error of at most ``target`` (unscaled) in every one of
    ``columns``, from the spread seen so far: (std / target)^2, at most twice the seeds it has (a spread from a
    few seeds is rough, so it grows in steps) and at most ``max_seeds``. Methods within target are left out."""
    needed = {}
    for name, per_seed in table.values.items():
        stats = [s for c in columns if (s := table.stat(name, c)) is not None and s.std is not None]
        n = len(per_seed)
        if not stats or max(s.se for s in stats) <= target:
            continue
        want = min(math.ceil((max(s.std for s in stats) / target) ** 2), 2 * n, max_seeds)
        if want > n:
            needed[name] = want
    return needed


def extra_experiments(cfg, needed: dict[str, int], have: dict[str, list]) -> list[Experiment]:
    """The experiments that bring each method of ``needed`` to its count of seeds (``have``: the seeds each
    method has now), at the main token share. New seeds continue after ``cfg.seeds`` and every seed used; one
    experiment serves every method of its group (:func:`_method_groups`), so a group grows to its largest need."""
    specs = []
    for members, params in _method_groups(cfg, list(cfg.methods)):
        want = max((needed[m] for m in members if m in needed), default=0)
        used = {s for m in members for s in have.get(m, [])}
        count = min((len(have.get(m, [])) for m in members), default=0)
        first = max([*cfg.seeds, *(s for s in used if isinstance(s, int))]) + 1
        for seed in range(first, first + max(0, want - count)):
            specs.append(_experiment(cfg, members, params, cfg.data_prop, "", seed))
    return specs
