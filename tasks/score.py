"""Stage `score@<round>`: per response token of the round's data, ``loss_base - loss_reference``.

A round whose reference is the base has nothing to compare against: every score is 0, its
selection keeps every token, and no model runs (the warm-up round, a chain's first round).
"""

from __future__ import annotations

from tokenclean.config import Params
from tokenclean.layout import BASE, model_dir, round_paths
from tokenclean.method.scores import score_round
from tokenclean.stage import log, stage_main


def run(params: Params, name: str, base=BASE) -> None:
    """Write out/rounds/<round>/score/scores.parquet (sample_id, loss_base, loss_ref, scores) and meta.json."""
    paths, reference = round_paths(name), model_dir(params.rounds[name].reference)
    if reference is None:
        log.info("round %s: the reference is the base: every score is 0 and every token is kept", name)
    score_round(params, f"score@{name}", paths.data, base, reference, paths.scores.parent)


def main(argv=None) -> None:
    stage_main("score", run, argv, per_round=True)


if __name__ == "__main__":
    main()
