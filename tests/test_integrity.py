"""Artifacts record what they were made from; mismatched inputs are refused; reruns are byte-identical."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.dataset import data_hash, load_rows
from tests.conftest import run_stages
from tokenclean import columns as C
from tokenclean.io import file_hash, read_json, table_meta


def other_tokens(src, dst):
    """``src``'s pool with one token of one sample changed: same sample ids, different data."""
    table = pq.read_table(src)
    ids = table.column(C.INPUT_IDS).to_pylist()
    ids[3][1] = ids[3][1] + 1
    pq.write_table(table.set_column(table.schema.get_field_index(C.INPUT_IDS), C.INPUT_IDS,
                                    pa.array(ids, table.schema.field(C.INPUT_IDS).type)), dst)
    return dst


def test_artifacts_record_config_and_input_hashes(tiny_run, tiny_params):
    out = tiny_run / "out"
    pool = data_hash(load_rows(out / "prepare" / "pool.parquet"))
    keep = table_meta(out / "select" / "keep.parquet")
    assert keep["config"] == tiny_params.select.model_dump()
    assert keep["inputs"] == {"data": pool, "scores": file_hash(out / "score" / "scores.parquet")}
    scores = table_meta(out / "score" / "scores.parquet")
    assert scores["config"] == tiny_params.score.model_dump()
    assert scores["inputs"] == {"data": pool, "base": file_hash(out / "base"), "reference": file_hash(out / "warmup" / "model")}
    prepared = table_meta(out / "prepare" / "pool.parquet")
    assert prepared["config"]["max_seq_len"] == tiny_params.data.max_seq_len
    assert prepared["inputs"] == {"source": file_hash(out / "generate"), "base": file_hash(out / "base")}
    chunk = table_meta(out / "evolve" / "r1" / "data" / "pool.parquet")
    assert chunk["inputs"]["source"] == file_hash(out / "evolve" / "split" / "1.parquet")
    assert table_meta(out / "evolve" / "split" / "1.parquet")["inputs"] == {"data": file_hash(out / "prepare" / "pool.parquet")}
    model = read_json(out / "train" / "model" / "meta.json")
    assert model["keep_sha256"] == file_hash(out / "select" / "keep.parquet")
    assert model["config"] == tiny_params.train.model_dump()


def test_a_mask_is_refused_with_data_it_was_not_made_from(tiny_run, tmp_path):
    from tasks.train import masked_labels

    pool, keep = tiny_run / "out" / "prepare" / "pool.parquet", tiny_run / "out" / "select" / "keep.parquet"
    assert len(masked_labels(pool, keep)[0]) > 0
    with pytest.raises(ValueError, match=r"keep.parquet was not made from .*other.parquet \(recorded data hash"):
        masked_labels(other_tokens(pool, tmp_path / "other.parquet"), keep)


def test_scores_are_refused_with_data_they_were_not_made_from(tiny_run, tiny_params, tmp_path):
    from tasks import select

    other = other_tokens(tiny_run / "out" / "prepare" / "pool.parquet", tmp_path / "other.parquet")
    with pytest.raises(ValueError, match=r"scores.parquet was not made from .*other.parquet"):
        select.run(tiny_params, out=tmp_path / "select", scores=tiny_run / "out" / "score" / "scores.parquet", data=other)
    assert not (tmp_path / "select").exists()


@pytest.mark.slow  # the fixed-model chain once more (~20 s)
def test_two_runs_give_byte_identical_masks_and_the_same_metrics(tiny_run, tiny_params, tmp_path):
    again = run_stages(tmp_path, tiny_params, evolve=False)
    for path in ("prepare/pool.parquet", "score/scores.parquet", "select/keep.parquet", "train/model"):
        assert file_hash(again / "out" / path) == file_hash(tiny_run / "out" / path), path
    for path in ("select/metrics.json", "evaluate/metrics.json"):
        assert read_json(again / "out" / path) == read_json(tiny_run / "out" / path), path
