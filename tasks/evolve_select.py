"""Stage `evolve_select`: a round's keep mask, with ``evolve.select`` and the round's overrides."""

from __future__ import annotations

from tasks import select
from tasks.rounds import EVOLVE, check_round, round_paths
from tasks.stage import stage_main
from tokenclean.config import Params


def run(params: Params, name: str, evolve=EVOLVE) -> None:
    """Write out/evolve/<round>/select/keep.parquet, metrics.json and summary.json."""
    check_round(params, name)
    paths = round_paths(name, evolve)
    select.run(params, out=paths.select, scores=paths.scores, data=paths.data, cfg=params.evolve.round_select(name))


def main(argv=None) -> None:
    stage_main("evolve_select", run, argv, per_round=True)


if __name__ == "__main__":
    main()
