"""Rounds on the tiny fixture: round params, a round whose reference is the base, scores against
the reference round's model, training that continues from the start round, and rounds built
from new SFT files."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from tokenclean import columns as C
from tokenclean.io import file_hash, read_json
from tokenclean.params_file import ParamsError, parse_params


def chained(name: str, prev: str, data: str = "x", **extra) -> dict:
    return {name: {"data": data, "reference": prev, "start": prev, **extra}}


def with_rounds(params, **rounds):
    raw = params.model_dump(exclude_none=True)
    raw["rounds"] = {**raw["rounds"], **rounds}
    return parse_params(raw)


@pytest.mark.parametrize("rounds, message", [
    (chained("r0", "r9"), "rounds.r0.reference: 'r9' must be 'base' or a round listed before it"),
    ({"r0": {"data": "x", "reference": "base", "start": "r9"}}, "rounds.r0.start: 'r9' must be 'base'"),
    (chained("base", "base"), "round name 'base'"),
    (chained("r0", "base", select={"data_prp": 0.5}),
     "unknown key 'rounds.r0.select.data_prp'; did you mean 'data_prop'"),
    ({**chained("r0", "base"), **chained("r1", "r0", train={"method": "full"})}, "keeps that round's method"),
    ({**chained("r0", "base"), **chained("r1", "r0", select={"data_prop": 1.5})}, "less than or equal to 1"),
    (chained("r0", "base", select={"data_prop": 0.5}), "scored against the base keeps every token"),
    ({"r0": {"data": "x", "start": "base"}}, "rounds.r0.reference: Field required"),
])
def test_bad_rounds_fail_at_load_with_what_to_fix(tiny_params, rounds, message):
    raw = tiny_params.model_dump(exclude_none=True)
    raw["rounds"], raw["profile"] = rounds, {}
    with pytest.raises(ParamsError, match=message):
        parse_params(raw)


def test_round_overrides_apply_to_that_round_only(tiny_params):
    p = with_rounds(tiny_params, **chained("r3", "r2", select={"data_prop": 0.3}, train={"epochs": 2}))
    assert p.round_select("r3").data_prop == 0.3 and p.round_select("r2").data_prop == 0.6
    assert p.round_train("r3").epochs == 2 and p.round_train("r2").epochs == 1
    assert p.round_select("warmup").strategy == "full" and p.round_select("fixed").strategy == "global"


def test_a_round_whose_reference_is_the_base_scores_zero_and_keeps_every_token(tiny_run):
    table = pq.read_table(tiny_run / "out/rounds/warmup/score/scores.parquet")
    keep = pq.read_table(tiny_run / "out/rounds/warmup/select/keep.parquet").column(C.KEEP).to_pylist()
    assert table.column_names == [C.SAMPLE_ID, C.SCORES], "no model ran: no losses"
    assert all(s == 0 for row in table.column(C.SCORES).to_pylist() for s in row) and all(all(k) for k in keep)
    assert read_json(tiny_run / "out/rounds/warmup/select/summary.json")["kept_share"] == 1.0


def full_logits_nll(model, ids, labels) -> np.ndarray:
    """Per response token NLL the plain way: every logit, one sample at a time."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    pos = np.flatnonzero(np.asarray(labels) != C.IGNORE)
    logp = torch.log_softmax(logits[pos - 1], -1)
    return -logp[torch.arange(len(pos)), torch.tensor(np.asarray(labels)[pos])].numpy()


def test_round_scores_are_base_minus_previous_round(tiny_run, tiny_params, monkeypatch):
    from tokenclean.model.checkpoint import load_checkpoint
    from tokenclean.model.modeling import load_base

    monkeypatch.chdir(tiny_run)  # LoRA checkpoints name their base by its path from the repository root
    base = load_base(tiny_run / "out/base", "float32")
    prev = load_checkpoint(tiny_run / "out/rounds/r1/train/model", tiny_run / "out/base", "float32")
    data = pq.read_table(tiny_run / "out/rounds/r2/data/pool.parquet").to_pylist()
    scores = pq.read_table(tiny_run / "out/rounds/r2/score/scores.parquet").column(C.SCORES).to_pylist()
    for row, got in list(zip(data, scores))[:4]:
        want = (full_logits_nll(base, row[C.INPUT_IDS], row[C.LABELS])
                - full_logits_nll(prev, row[C.INPUT_IDS], row[C.LABELS]))
        np.testing.assert_allclose(got, want, atol=2e-4)
    assert read_json(tiny_run / "out/rounds/r2/select/summary.json")["kept_share"] == pytest.approx(0.6, abs=0.01)


def test_a_round_trains_on_from_its_predecessors_weights(tiny_run, tiny_params, monkeypatch):
    from safetensors.torch import load_file

    from tokenclean.method.masks import masked_labels
    from tokenclean.model.finetune import finetune

    monkeypatch.chdir(tiny_run)
    meta = read_json(tiny_run / "out/rounds/r2/train/model/meta.json")
    assert meta["start"] == "r1" and meta["prev_sha256"] == file_hash(tiny_run / "out/rounds/r1/train/model")
    ids, labels = masked_labels(tiny_run / "out/rounds/r2/data/pool.parquet",
                                tiny_run / "out/rounds/r2/select/keep.parquet")
    frozen = tiny_params.round_train("r2").model_copy(update={"lr": 1e-20, "epochs": 0.1})
    out = tiny_run / "scratch_continue"
    finetune(tiny_params, frozen, ids, labels, tiny_run / "out/base", out, {}, "t",
             start=tiny_run / "out/rounds/r1/train/model")
    before = load_file(tiny_run / "out/rounds/r1/train/model/adapter_model.safetensors")
    after = load_file(out / "adapter_model.safetensors")
    assert before.keys() == after.keys() and any(t.abs().sum() > 0 for k, t in before.items() if "lora_B" in k)
    for k in before:  # a fresh adapter would start with lora_B = 0: these are round r1's trained weights
        torch.testing.assert_close(after[k], before[k], atol=1e-6, rtol=0)


def test_a_round_of_new_sft_files_is_rendered_like_prepare(tiny_run, tiny_params, monkeypatch):
    from tasks import data

    monkeypatch.chdir(tiny_run)
    new = tiny_run / "rounds" / "r3"
    new.mkdir(parents=True)
    lines = (tiny_run / "out/generate/pool.jsonl").read_text().splitlines()
    for i, chunk in enumerate((lines[:3], lines[3:5])):
        (new / f"part{i}.jsonl").write_text(
            "\n".join(json.dumps({**json.loads(x), "id": f"n{i}-{j}"}) for j, x in enumerate(chunk)))
    params = with_rounds(tiny_params, **chained("r3", "r2", data="rounds/r3"))
    data.run(params, "r3")
    table = pq.read_table(tiny_run / "out/rounds/r3/data/pool.parquet").to_pylist()
    assert [r[C.SAMPLE_ID] for r in table] == ["n0-0", "n0-1", "n0-2", "n1-0", "n1-1"]
    assert all(any(y != C.IGNORE for y in r[C.LABELS]) for r in table)
    assert read_json(tiny_run / "out/rounds/r3/data/stats.json")["source"] == "sft"


def test_the_fixed_round_is_scored_against_the_warmup_round_and_trained_from_the_base(tiny_run):
    fixed = read_json(tiny_run / "out/rounds/fixed/train/model/meta.json")
    assert (fixed["reference"], fixed["start"]) == ("warmup", "base")
    assert fixed["prev_sha256"] == fixed["base_sha256"], "a fresh model from the base, not a continued one"
    warm = read_json(tiny_run / "out/rounds/warmup/select/summary.json")
    assert warm["kept_share"] == 1.0, "the warm-up reference learns every token of the clean split"
