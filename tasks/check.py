"""Stage `check`: every check that would otherwise fail late, before any training (tokenclean/preflight.py)."""

from __future__ import annotations

from tokenclean.config import Params
from tokenclean.io import write_json
from tokenclean.layout import BASE, CHECK
from tokenclean.preflight import preflight
from tokenclean.stage import log, stage_main


def run(params: Params, base=BASE) -> None:
    """Write out/check/passed.json: the checks that passed, by name only, so that a change which
    leaves them passing changes no output and re-runs nothing after this stage."""
    done = preflight(params, base, say=lambda what: log.info("ok: %s", what)).done
    write_json({"passed": [what.split(":")[0] for what in done]}, CHECK / "passed.json")


def main(argv=None) -> None:
    stage_main("check", run, argv)


if __name__ == "__main__":
    main()
