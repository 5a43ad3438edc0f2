"""Stage `evolve_base`: the folder ``out/evolve/base/train`` that round 0 (``prev: base``) depends on.

Every round depends on its predecessor's ``out/evolve/<prev>/train``; for the base that is
this pointer, whose content hash changes whenever the base model does.
"""

from __future__ import annotations

from tasks.rounds import BASE, EVOLVE
from tasks.stage import stage_main
from tokenclean.config import Params
from tokenclean.io import file_hash, write_json
from tokenclean.modeling import base_source


def run(params: Params, out=EVOLVE / "base" / "train", base=BASE) -> None:
    """Write out/evolve/base/train/model.json (where the base lives and its content hash)."""
    name, revision = base_source(base)
    write_json({"model": str(base), "source": name, "revision": revision, "sha256": file_hash(base)}, out / "model.json")


def main(argv=None) -> None:
    stage_main("evolve_base", run, argv)


if __name__ == "__main__":
    main()
