"""Each stage on the tiny fixture: outputs exist, are ragged and aligned, metrics are named."""

import json

import numpy as np
import pyarrow.parquet as pq

from tokenclean import columns as C
from tokenclean.io import read_json, table_hash

# Golden hash of the tiny run's tokenised pool: a change in generation, tokenizer training or
# rendering changes it. Update it deliberately (and say why) when such a change is intended.
GOLDEN_POOL = "1d55953647413719edbc8f4539a9368e9046612b0ec340215e88b1a39690f3d6"


def test_prepare_writes_ragged_unpadded_columns(tiny_run, tiny_tokenizer):
    t = pq.read_table(tiny_run / "out" / "prepare" / "pool.parquet")
    assert t.column_names[:3] == [C.SAMPLE_ID, C.INPUT_IDS, C.LABELS]
    lengths = {len(x) for x in t.column(C.INPUT_IDS).to_pylist()}
    assert len(lengths) > 1, "rows are ragged"
    assert all(tiny_tokenizer.pad_token_id not in x for x in t.column(C.INPUT_IDS).to_pylist())
    stats = read_json(tiny_run / "out" / "prepare" / "stats.json")
    assert stats["pool"]["samples"] == 48 and stats["warmup"]["samples"] == 16


def test_scores_are_float32_one_per_response_token(tiny_run):
    s = pq.read_table(tiny_run / "out" / "rounds" / "fixed" / "score" / "scores.parquet")
    p = pq.read_table(tiny_run / "out" / "prepare" / "pool.parquet")
    assert s.schema.field(C.SCORES).type.value_type == "float"
    for sc, lb, lr, labels in zip(*(s.column(c).to_pylist() for c in (C.SCORES, C.LOSS_BASE, C.LOSS_REF)),
                                  p.column(C.LABELS).to_pylist()):
        assert len(sc) == sum(y != C.IGNORE for y in labels)
        np.testing.assert_allclose(sc, np.float32(lb) - np.float32(lr), atol=1e-6)


def test_select_metrics_and_mask_shape(tiny_run):
    m = read_json(tiny_run / "out" / "rounds" / "fixed" / "select" / "metrics.json")
    assert set(m) == {"kept_share", "answer_kept", "boilerplate_dropped", "noise_dropped", "score_auc"}
    assert abs(m["kept_share"] - 0.6) < 0.01
    keep = pq.read_table(tiny_run / "out" / "rounds" / "fixed" / "select" / "keep.parquet").column(C.KEEP).to_pylist()
    scores = (pq.read_table(tiny_run / "out" / "rounds" / "fixed" / "score" / "scores.parquet")
              .column(C.SCORES).to_pylist())
    assert [len(k) for k in keep] == [len(s) for s in scores]
    flat_k, flat_s = np.concatenate(keep), np.concatenate(scores)
    assert flat_s[flat_k].min() >= flat_s[~flat_k].max()  # global: every kept score beats every dropped one


def test_checkpoints_are_safetensors_with_meta(tiny_run):
    for name in ("warmup", "fixed"):
        d = tiny_run / "out" / "rounds" / name / "train" / "model"
        assert (d / "adapter_model.safetensors").exists()
        meta = read_json(d / "meta.json")
        assert meta["kind"] == "lora" and meta["train"]["steps"] > 0
    assert not list((tiny_run / "out").rglob("*.pkl")) and not list((tiny_run / "out").rglob("*.bin"))


def test_reference_loads_on_its_own(tiny_run, monkeypatch):
    from peft import AutoPeftModelForCausalLM

    monkeypatch.chdir(tiny_run)
    model = AutoPeftModelForCausalLM.from_pretrained("out/rounds/warmup/train/model")
    assert model.peft_config["default"].base_model_name_or_path == "out/base"


def test_evaluate_metrics(tiny_run):
    m = read_json(tiny_run / "out" / "rounds" / "fixed" / "evaluate" / "metrics.json")
    assert set(m) == {"eval_loss", "accuracy", "lm_eval/zorbish_mc/acc", "lm_eval/zorbish_gen/exact_match"}
    assert np.isfinite(m["eval_loss"]) and 0 <= m["accuracy"] <= 1
    assert json.loads((tiny_run / "out" / "rounds" / "fixed" / "evaluate" / "examples.json").read_text())


def test_golden_hash_of_tokenised_pool(tiny_run):
    t = pq.read_table(tiny_run / "out" / "prepare" / "pool.parquet")
    assert table_hash(t, [C.INPUT_IDS, C.LABELS, C.KINDS]) == GOLDEN_POOL


def test_generate_writes_only_what_the_source_and_base_need(tmp_path, tiny_params):
    from tasks import generate

    own = tiny_params.model_copy(update={"data": tiny_params.data.model_copy(update={"source": "data/sft.jsonl"})})
    generate.run(own, tmp_path / "own")
    assert sorted(p.name for p in (tmp_path / "own").iterdir()) == ["pretrain.jsonl"], "no synthetic task data"
    assert (tmp_path / "own/pretrain.jsonl").stat().st_size > 0, "the tiny base still pretrains"
    real = own.model_copy(update={"model": own.model.model_copy(update={"base": "models/my-model"})})
    generate.run(real, tmp_path / "real")
    assert [p.stat().st_size for p in (tmp_path / "real").iterdir()] == [0], "a real model needs no corpus"
    generate.run(tiny_params, tmp_path / "default")
    assert {p.name for p in (tmp_path / "default").iterdir()} == {"pool.jsonl", "warmup.jsonl", "eval.jsonl",
                                                                   "pretrain.jsonl"}
