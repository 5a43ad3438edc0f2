"""Stage `generate`: the offline default data (synthetic task splits and pretraining chats)."""

from __future__ import annotations

import json

from tokenclean.config import Params
from tokenclean.data.synthetic import pretrain_chats, sft_splits
from tokenclean.io import atomic_path
from tokenclean.layout import GENERATE
from tokenclean.stage import log, stage_main


def _write_jsonl(rows, path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def run(params: Params, out=GENERATE) -> None:
    """Write warmup/pool/eval.jsonl (chat messages + ground-truth kinds) when ``data.source`` is
    ``synthetic``, and pretrain.jsonl (empty unless ``model.base`` is ``tiny``): your own data and
    model need none of it."""
    if params.data.source == "synthetic":
        for split, rows in sft_splits(params.synthetic).items():
            _write_jsonl(rows, out / f"{split}.jsonl")
            log.info("%s: %d samples", split, len(rows))
    else:
        log.info("data.source is '%s': no synthetic task data", params.data.source)
    tiny = params.model.base == "tiny"
    _write_jsonl(({"messages": m} for m in pretrain_chats(params.synthetic)) if tiny else (), out / "pretrain.jsonl")
    if not tiny:
        log.info("model.base is '%s': no pretraining corpus (pretrain.jsonl left empty)", params.model.base)


def main(argv=None) -> None:
    stage_main("generate", run, argv)


if __name__ == "__main__":
    main()
