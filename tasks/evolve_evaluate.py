"""Stage `evolve_evaluate`: a round's model on the held-out split, like the `evaluate` stage."""

from __future__ import annotations

from tasks import evaluate
from tasks.rounds import BASE, EVOLVE, check_round, round_paths
from tasks.stage import OUT, stage_main
from tokenclean.config import Params


def run(params: Params, name: str, evolve=EVOLVE, data=OUT / "prepare" / "eval.parquet", base=BASE) -> None:
    """Write out/evolve/<round>/evaluate/metrics.json and examples.json."""
    check_round(params, name)
    paths = round_paths(name, evolve)
    evaluate.run(params, out=paths.evaluate, model=paths.model, data=data, base=base)


def main(argv=None) -> None:
    stage_main("evolve_evaluate", run, argv, per_round=True)


if __name__ == "__main__":
    main()
