"""Stage `evolve_score`: a round's tokens scored as ``loss_base - loss_model(prev)``.

Round 0 (``prev: base``) has no reference yet: its reference is the base itself, so every
score is 0 and the round keeps all tokens (``EvolveCfg.round_select``). Its base NLL is
still written, for auditing.
"""

from __future__ import annotations

from tasks.dataset import load_rows
from tasks.rounds import BASE, EVOLVE, check_round, prev_model, round_paths
from tasks.score import pool_losses, write_scores
from tasks.stage import log, stage_main
from tokenclean import columns as C
from tokenclean.config import Params


def run(params: Params, name: str, evolve=EVOLVE, base=BASE) -> None:
    """Write out/evolve/<round>/score/scores.parquet and meta.json."""
    check_round(params, name)
    paths, reference = round_paths(name, evolve), prev_model(params, name, evolve)
    rows = load_rows(paths.data)
    if reference is None:
        log.info("round %s starts from the base: scores are 0, every token is kept", name)
    lb, lr = pool_losses(params, rows[C.INPUT_IDS], rows[C.LABELS], base, reference)
    write_scores(rows[C.SAMPLE_ID], lb, lr, paths.scores.parent, paths.data)


def main(argv=None) -> None:
    stage_main("evolve_score", run, argv, per_round=True)


if __name__ == "__main__":
    main()
