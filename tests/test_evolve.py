"""Self-evolving rounds on the tiny fixture: params, round 0, scores against the previous
round's model, continuing training, and rounds built from new SFT files."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from tokenclean import columns as C
from tokenclean.config import ParamsError, parse_params
from tokenclean.io import file_hash, read_json


def with_rounds(params, **rounds):
    raw = params.model_dump()
    raw["evolve"]["rounds"] = {**raw["evolve"]["rounds"], **rounds}
    return parse_params(raw)


@pytest.mark.parametrize("rounds, message", [
    ({"r0": {"prev": "r9", "data": "x"}}, "prev 'r9' must be 'base' or a round listed before it"),
    ({"split": {"prev": "base", "data": "x"}}, "round name 'split'"),
    ({"r0": {"prev": "base", "data": "x", "select": {"data_prp": 0.5}}}, "did you mean 'data_prop'"),
    ({"r0": {"prev": "base", "data": "x", "train": {"method": "full"}}}, "set once for all rounds"),
    ({"r0": {"prev": "base", "data": "x", "select": {"data_prop": 1.5}}}, "less than or equal to 1"),
])
def test_bad_rounds_fail_at_load_with_what_to_fix(tiny_params, rounds, message):
    raw = tiny_params.model_dump()
    raw["evolve"]["rounds"] = rounds
    with pytest.raises(ParamsError, match=message):
        parse_params(raw)


def test_round_overrides_apply_to_that_round_only(tiny_params):
    p = with_rounds(tiny_params, r3={"prev": "r2", "data": "x", "select": {"data_prop": 0.3}, "train": {"epochs": 2}})
    assert p.evolve.round_select("r3").data_prop == 0.3 and p.evolve.round_select("r2").data_prop == 0.6
    assert p.evolve.round_train("r3").epochs == 2 and p.evolve.round_train("r2").epochs == 1
    assert p.evolve.round_select("r0").strategy == "full", "round 0 has no reference: it keeps everything"


def test_round_zero_scores_zero_and_keeps_every_token(tiny_run):
    scores = pq.read_table(tiny_run / "out/evolve/r0/score/scores.parquet").column(C.SCORES).to_pylist()
    keep = pq.read_table(tiny_run / "out/evolve/r0/select/keep.parquet").column(C.KEEP).to_pylist()
    assert all(s == 0 for row in scores for s in row) and all(all(k) for k in keep)
    assert read_json(tiny_run / "out/evolve/r0/select/summary.json")["kept_share"] == 1.0


def full_logits_nll(model, ids, labels) -> np.ndarray:
    """Per response token NLL the plain way: every logit, one sample at a time."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    pos = np.flatnonzero(np.asarray(labels) != C.IGNORE)
    logp = torch.log_softmax(logits[pos - 1], -1)
    return -logp[torch.arange(len(pos)), torch.tensor(np.asarray(labels)[pos])].numpy()


def test_round_scores_are_base_minus_previous_round(tiny_run, tiny_params, monkeypatch):
    from tokenclean.checkpoint import load_checkpoint
    from tokenclean.modeling import load_base

    monkeypatch.chdir(tiny_run)  # LoRA checkpoints name their base by its path from the repository root
    base = load_base(tiny_run / "out/base", "float32")
    prev = load_checkpoint(tiny_run / "out/evolve/r0/train/model", tiny_run / "out/base", "float32")
    data = pq.read_table(tiny_run / "out/evolve/r1/data/pool.parquet").to_pylist()
    scores = pq.read_table(tiny_run / "out/evolve/r1/score/scores.parquet").column(C.SCORES).to_pylist()
    for row, got in list(zip(data, scores))[:4]:
        want = full_logits_nll(base, row[C.INPUT_IDS], row[C.LABELS]) - full_logits_nll(prev, row[C.INPUT_IDS], row[C.LABELS])
        np.testing.assert_allclose(got, want, atol=2e-4)
    assert read_json(tiny_run / "out/evolve/r1/select/summary.json")["kept_share"] == pytest.approx(0.6, abs=0.01)


def test_a_round_trains_on_from_its_predecessors_weights(tiny_run, tiny_params, monkeypatch):
    from safetensors.torch import load_file

    from tasks.finetune import finetune
    from tasks.train import masked_labels

    monkeypatch.chdir(tiny_run)
    meta = read_json(tiny_run / "out/evolve/r1/train/model/meta.json")
    assert meta["prev"] == "r0" and meta["prev_sha256"] == file_hash(tiny_run / "out/evolve/r0/train/model")
    ids, labels = masked_labels(tiny_run / "out/evolve/r1/data/pool.parquet", tiny_run / "out/evolve/r1/select/keep.parquet")
    frozen = tiny_params.evolve.round_train("r1").model_copy(update={"lr": 1e-20, "epochs": 0.1})
    out = tiny_run / "scratch_continue"
    finetune(tiny_params, frozen, ids, labels, tiny_run / "out/base", out, {}, "t", start=tiny_run / "out/evolve/r0/train/model")
    before = load_file(tiny_run / "out/evolve/r0/train/model/adapter_model.safetensors")
    after = load_file(out / "adapter_model.safetensors")
    assert before.keys() == after.keys() and any(t.abs().sum() > 0 for k, t in before.items() if "lora_B" in k)
    for k in before:  # a fresh adapter would start with lora_B = 0: these are round r0's trained weights
        torch.testing.assert_close(after[k], before[k], atol=1e-6, rtol=0)


def test_a_round_of_new_sft_files_is_rendered_like_prepare(tiny_run, tiny_params, monkeypatch):
    from tasks import evolve_data

    monkeypatch.chdir(tiny_run)
    new = tiny_run / "rounds" / "r3"
    new.mkdir(parents=True)
    lines = (tiny_run / "out/generate/pool.jsonl").read_text().splitlines()
    for i, chunk in enumerate((lines[:3], lines[3:5])):
        (new / f"part{i}.jsonl").write_text("\n".join(json.dumps({**json.loads(x), "id": f"n{i}-{j}"}) for j, x in enumerate(chunk)))
    params = with_rounds(tiny_params, r3={"prev": "r2", "data": "rounds/r3"})
    evolve_data.run(params, "r3")
    table = pq.read_table(tiny_run / "out/evolve/r3/data/pool.parquet").to_pylist()
    assert [r[C.SAMPLE_ID] for r in table] == ["n0-0", "n0-1", "n0-2", "n1-0", "n1-1"]
    assert all(any(y != C.IGNORE for y in r[C.LABELS]) for r in table)
    assert read_json(tiny_run / "out/evolve/r3/data/stats.json")["source"] == "sft"
