"""The cleaned data out: a round's export loads with `datasets`, pads with `DataCollatorForSeq2Seq`
and trains a `transformers.Trainer` step; labels are -100 exactly on the prompt and the dropped tokens."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from tokenclean import columns as C
from tokenclean.data.rows import load_rows
from tokenclean.method.export import CLOSE, OPEN, cleaned_batches, cleaned_table, write_export


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    from tokenclean.model.modeling import load_tokenizer

    rnd = tiny_run / "out/rounds/fixed"
    tok = load_tokenizer(tiny_run / "out/base")
    path = tmp_path_factory.mktemp("export") / "fixed.parquet"
    write_export(cleaned_batches(rnd / "data/pool.parquet", rnd / "select/keep.parquet", tok), path, {})
    return path, rnd, tok


def test_labels_are_ignored_exactly_on_prompt_and_dropped_tokens(exported):
    path, rnd, tok = exported
    table = pq.read_table(path).to_pylist()
    data, keep = load_rows(rnd / "data/pool.parquet"), load_rows(rnd / "select/keep.parquet", (C.SAMPLE_ID, C.KEEP))
    assert [r[C.SAMPLE_ID] for r in table] == data[C.SAMPLE_ID]
    for row, ids, labels, k in zip(table, data[C.INPUT_IDS], data[C.LABELS], keep[C.KEEP]):
        assert row[C.INPUT_IDS] == ids.tolist() and row["attention_mask"] == [1] * len(ids)
        response = np.flatnonzero(labels != C.IGNORE)
        expected = np.full(len(ids), C.IGNORE)
        expected[response[k]] = ids[response[k]]
        assert row[C.LABELS] == expected.tolist()
        assert row["text"].count(OPEN) == row["text"].count(CLOSE) >= (1 if k.any() else 0)
    kept = sum(int(k.sum()) for k in keep[C.KEEP])
    assert sum(sum(1 for y in r[C.LABELS] if y != C.IGNORE) for r in table) == kept > 0


def test_a_trainer_step_runs_on_the_export(exported, tiny_run, tmp_path):
    import datasets
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from tokenclean.model.modeling import load_base

    path, _, tok = exported
    ds = datasets.load_dataset("parquet", data_files=str(path), split="train").remove_columns(["sample_id", "text"])
    model = load_base(tiny_run / "out/base", "float32")
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=4, report_to=[],
                             use_cpu=True, save_strategy="no", logging_steps=1)
    collator = DataCollatorForSeq2Seq(tok, model=model, padding=True, label_pad_token_id=C.IGNORE)
    result = Trainer(model=model, args=args, train_dataset=ds, data_collator=collator).train()
    assert result.global_step == 1 and np.isfinite(result.training_loss)


def test_export_command_writes_json_lines(tiny_run, tmp_path, capsys):
    from tokenclean.cli.main import main

    out = tmp_path / "fixed.jsonl"
    assert main(["export", "--repo", str(tiny_run), "--round", "fixed", "--format", "jsonl", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r[C.SAMPLE_ID] for r in rows] == load_rows(tiny_run / "out/rounds/fixed/data/pool.parquet")[C.SAMPLE_ID]
    assert set(rows[0]) == {"sample_id", "input_ids", "attention_mask", "labels", "text"}
    assert main(["export", "--repo", str(tiny_run), "--round", "nope"]) == 2
    assert "round 'nope' has no keep mask" in capsys.readouterr().err


@pytest.mark.slow
def test_the_export_stage_writes_every_round(reproduced_repo):
    from tokenclean.model.modeling import load_tokenizer

    tok = load_tokenizer(reproduced_repo / "out/base")
    for name in ("warmup", "fixed", "r1", "r2"):
        rnd = reproduced_repo / "out/rounds" / name
        got = pq.read_table(reproduced_repo / f"out/export/{name}.parquet")
        assert got.equals(cleaned_table(rnd / "data/pool.parquet", rnd / "select/keep.parquet", tok)), name
