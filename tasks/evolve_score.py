"""Stage `evolve_score`: a round's tokens scored as ``loss_base - loss_model(prev)``.

Round 0 (``prev: base``) has no reference yet: its reference is the base itself, so every
score is 0 and the round keeps all tokens (``EvolveCfg.round_select``). Its base NLL is
still written, for auditing.
"""

from __future__ import annotations

from tasks.rounds import BASE, EVOLVE, check_round, prev_model, round_paths
from tasks.score import score_stage
from tasks.stage import log, stage_main
from tokenclean.config import Params


def run(params: Params, name: str, evolve=EVOLVE, base=BASE) -> None:
    """Write out/evolve/<round>/score/scores.parquet and meta.json."""
    check_round(params, name)
    paths, reference = round_paths(name, evolve), prev_model(params, name, evolve)
    if reference is None:
        log.info("round %s starts from the base: scores are 0, every token is kept", name)
    score_stage(params, f"evolve_score@{name}", paths.data, base, reference, paths.scores.parent)


def main(argv=None) -> None:
    stage_main("evolve_score", run, argv, per_round=True)


if __name__ == "__main__":
    main()
