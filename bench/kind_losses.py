"""Teacher-forced NLL of round models on the eval split, by ground-truth kind (the default synthetic data).

    ./run python -m bench.kind_losses base warmup fixed r0 r4

What a model has learned of each kind of response token (answer, boilerplate) and of the end-of-turn token,
beside what its free generation shows (the round's evaluate/examples.json). docs/evaluation.md has a run.
"""

from __future__ import annotations

import sys

import numpy as np

from tokenclean import columns as C
from tokenclean.data.rows import load_rows
from tokenclean.layout import BASE, prepared, round_paths
from tokenclean.method.scoring import score_dataset
from tokenclean.model.checkpoint import load_checkpoint
from tokenclean.model.modeling import load_base, load_tokenizer


def kind_losses(name: str, rows: dict, tok) -> dict[str, float]:
    model = load_base(BASE, "float32") if name == "base" else load_checkpoint(round_paths(name).model, BASE, "float32")
    labels = rows[C.LABELS]
    nll = np.concatenate(score_dataset(model, rows[C.INPUT_IDS], labels, tok.pad_token_id, 4096, 512, desc=name))
    resp = [np.asarray(y) != C.IGNORE for y in labels]
    kinds = np.concatenate([np.asarray(k)[r] for k, r in zip(rows[C.KINDS], resp)])
    ids = np.concatenate([np.asarray(y)[r] for y, r in zip(labels, resp)])
    out = {k: float(nll[kinds == i].mean()) for i, k in C.KIND_NAMES.items() if (kinds == i).any()}
    return {**out, "end of turn": float(nll[ids == tok.eos_token_id].mean())}


def main(argv=None) -> None:
    names = (argv if argv is not None else sys.argv[1:]) or ["base", "warmup", "fixed"]
    rows = load_rows(prepared("eval"), (C.SAMPLE_ID, C.INPUT_IDS, C.LABELS, C.KINDS))
    tok = load_tokenizer(BASE)
    for name in names:
        print(name, {k: round(v, 3) for k, v in kind_losses(name, rows, tok).items()}, flush=True)


if __name__ == "__main__":
    main()
