"""Flow `retrain`: new SFT files in the inbox become the next self-evolving round.

One run: look in ``retrain.inbox``; with nothing new, stop and change nothing. Otherwise
copy the files to ``<retrain.store>/<round>/`` (tracked by DVC), append the round to
``rounds`` (reference and start: the last round), reproduce what is stale (the new round's
stages and the summary; DVC skips the rest), and compare its evaluation with the previous
round's. A round within ``retrain.tolerance`` is promoted: params.yaml, dvc.lock and the
new .dvc file are committed and tagged ``<tag_prefix><round>``, outputs are pushed to the
DVC remote and the files leave the inbox. A regressing (or failing) round is rolled back:
the committed params.yaml and dvc.lock are restored with their outputs, so the previous
model stays current, and the files move to ``<inbox>/rejected/<round>/``.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

from prefect import flow, get_run_logger

from flows import versioning as vc
from flows.params_file import append_round
from flows.token_cleaning import token_cleaning
from tokenclean.config import Params, RetrainCfg
from tokenclean.data.formats import SUFFIXES
from tokenclean.io import read_json
from tokenclean.layout import BASE_ROUND, OUT, REPORTS, round_paths
from tokenclean.locks import exclusive
from tokenclean.params_file import load_params

COMMITTED = ["params.yaml", "dvc.lock"]
RETRAIN_LOCK = Path(".dvc/tmp/retrain.lock")  # held for a whole retrain run
TARGETS = ["summary", "report", "export"]  # what a new round changes; earlier rounds are not touched


class Regression(RuntimeError):
    """The new round evaluates worse than its predecessor by more than retrain.tolerance."""


def inbox_files(inbox: Path) -> list[Path]:
    """SFT files waiting in the inbox (hidden names are files still being written: move files in)."""
    if not inbox.is_dir():
        return []
    return sorted(f for f in inbox.iterdir() if f.is_file() and f.suffix in SUFFIXES and not f.name.startswith("."))


def next_round(params: Params) -> tuple[str, str]:
    """The new round's name (r<N> after the highest number so far) and its predecessor (the last round)."""
    names = list(params.rounds)
    numbers = [int(m.group(1)) for m in map(re.compile(r"r(\d+)$").match, names) if m]
    return f"r{max(numbers, default=-1) + 1}", names[-1] if names else BASE_ROUND


def check_regression(root: Path, cfg: RetrainCfg, name: str, prev: str) -> dict:
    new = read_json(root / round_paths(name).metrics)
    if prev == BASE_ROUND or cfg.metric not in new:
        return new
    old = read_json(root / round_paths(prev).metrics)[cfg.metric]
    worse = new[cfg.metric] - old if cfg.mode == "min" else old - new[cfg.metric]
    if worse > cfg.tolerance:
        raise Regression(f"round {name} regresses: {cfg.metric} {new[cfg.metric]:.4f} against {old:.4f} for {prev} "
                         f"(worse by {worse:.4f} > retrain.tolerance {cfg.tolerance}); "
                         f"not promoted, {prev} stays current")
    return new


def reject(root: Path, cfg: RetrainCfg, name: str, files: list[Path]) -> Path:
    """Undo the round: committed params/lock and outputs back, the files parked out of the inbox."""
    ignore = f"{cfg.store}/.gitignore"  # `dvc add` listed the round's folder there
    tracked = bool(vc.git(root, "ls-files", "--", ignore).strip())
    vc.restore(root, COMMITTED + [ignore] * tracked)
    if not tracked:
        (root / ignore).unlink(missing_ok=True)
    shutil.rmtree(root / cfg.store / name, ignore_errors=True)
    (root / cfg.store / f"{name}.dvc").unlink(missing_ok=True)
    shutil.rmtree(root / round_paths(name).root, ignore_errors=True)
    parked = root / cfg.inbox / "rejected" / name
    parked.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.move(f, parked / f.name)
    return parked


@flow(name="retrain")
def retrain(repo: str = ".") -> dict:
    """Turn new inbox files into the next round; promote it unless its evaluation regresses."""
    root, log = Path(repo).resolve(), get_run_logger()
    params = load_params(root / "params.yaml")
    cfg = params.retrain
    files = inbox_files(root / cfg.inbox)
    if not files:
        log.info("no new data in %s: nothing to do", root / cfg.inbox)
        return {"status": "no new data"}
    # a second retrain (served or by hand) stops here, touching nothing
    with exclusive(root / RETRAIN_LOCK, "retrain", "another retrain run is in progress; one at a time: wait for it"):
        return promote_round(root, params, files, log)


def promote_round(root: Path, params: Params, files: list[Path], log) -> dict:
    """Make ``files`` the next round, run the stale stages, and commit it or roll it back."""
    cfg = params.retrain
    vc.require_clean(root, COMMITTED)
    name, prev = next_round(params)
    store = root / cfg.store / name
    log.info("round %s (after %s) from %d files: %s", name, prev, len(files), [f.name for f in files])
    try:
        store.mkdir(parents=True)
        for f in files:
            shutil.copy2(f, store / f.name)
        vc.dvc(root, "add", str(store.relative_to(root)))
        append_round(root / "params.yaml", name, prev, str(store.relative_to(root)))
        token_cleaning(repo=str(root), targets=TARGETS)
        metrics = check_regression(root, cfg, name, prev)
    except Exception as err:
        parked = reject(root, cfg, name, files)
        log.error("round %s not promoted; its files are in %s (fix, then move them back to retry)", name, parked)
        raise err
    tag = f"{cfg.tag_prefix}{name}"
    commit = vc.commit_round(root, f"retrain: round {name} from {len(files)} new files", tag,
                             COMMITTED + [cfg.store, str(OUT), str(REPORTS)])
    vc.push(root, cfg.remote)
    for f in files:
        f.unlink()
    log.info("promoted round %s: commit %s, tag %s, metrics %s", name, commit[:10], tag, metrics)
    return {"status": "promoted", "round": name, "tag": tag, "commit": commit, "metrics": metrics}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.retrain", description=retrain.__doc__)
    parser.add_argument("--repo", default=".", help="repository root (default: .)")
    retrain(repo=parser.parse_args(argv).repo)


if __name__ == "__main__":
    main()
