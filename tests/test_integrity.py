"""Artifacts record what they were made from; mismatched inputs are refused; reruns are byte-identical."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.tiny import run_stages
from tokenclean import columns as C
from tokenclean.data.rows import data_hash
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
    out, fixed = tiny_run / "out", tiny_run / "out/rounds/fixed"
    pool = data_hash(fixed / "data/pool.parquet")
    assert pool == data_hash(out / "prepare/pool.parquet"), "a round's data is its source's rows"
    keep = table_meta(fixed / "select/keep.parquet")
    assert keep["config"] == tiny_params.round_select("fixed").model_dump()
    assert keep["inputs"] == {"data": pool, "scores": file_hash(fixed / "score/scores.parquet")}
    scores = table_meta(fixed / "score/scores.parquet")
    assert scores["config"] == tiny_params.score.model_dump()
    warmup = file_hash(out / "rounds/warmup/train/model")
    assert scores["inputs"] == {"data": pool, "base": file_hash(out / "base"), "reference": warmup}
    prepared = table_meta(out / "prepare/pool.parquet")
    assert prepared["config"]["max_seq_len"] == tiny_params.data.max_seq_len
    assert prepared["inputs"] == {"source": file_hash(out / "generate"), "base": file_hash(out / "base")}
    chunk = table_meta(out / "rounds/r2/data/pool.parquet")
    assert chunk["inputs"]["source"] == file_hash(out / "split/1.parquet")
    assert table_meta(out / "split/1.parquet")["inputs"] == {"data": file_hash(out / "prepare/pool.parquet")}
    model = read_json(fixed / "train/model/meta.json")
    assert model["keep_sha256"] == file_hash(fixed / "select/keep.parquet")
    assert model["config"] == tiny_params.round_train("fixed").model_dump()


def test_a_mask_is_refused_with_data_it_was_not_made_from(tiny_run, tmp_path):
    from tokenclean.method.masks import masked_labels

    pool, keep = tiny_run / "out/rounds/fixed/data/pool.parquet", tiny_run / "out/rounds/fixed/select/keep.parquet"
    assert len(masked_labels(pool, keep)[0]) > 0
    with pytest.raises(ValueError, match=r"keep.parquet was not made from .*other.parquet \(recorded data hash"):
        masked_labels(other_tokens(pool, tmp_path / "other.parquet"), keep)


def test_scores_are_refused_with_data_they_were_not_made_from(tiny_run, tiny_params, tmp_path, monkeypatch):
    from tasks import select

    fixed = tmp_path / "out/rounds/fixed"
    shutil.copytree(tiny_run / "out/rounds/fixed/score", fixed / "score")
    (fixed / "data").mkdir()
    other_tokens(tiny_run / "out/rounds/fixed/data/pool.parquet", fixed / "data/pool.parquet")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"scores.parquet was not made from .*pool.parquet"):
        select.run(tiny_params, "fixed")
    assert not (fixed / "select").exists()


@pytest.mark.slow  # the warm-up and fixed rounds once more (~10 s)
def test_two_runs_give_byte_identical_masks_and_the_same_metrics(tiny_run, tiny_params, tmp_path):
    again = run_stages(tmp_path, tiny_params, rounds=["warmup", "fixed"])
    fixed = "rounds/fixed/"
    paths = ("prepare/pool.parquet", f"{fixed}score/scores.parquet", f"{fixed}select/keep.parquet",
             f"{fixed}train/model")
    for path in paths:
        assert file_hash(again / "out" / path) == file_hash(tiny_run / "out" / path), path
    for path in (f"{fixed}select/metrics.json", f"{fixed}evaluate/metrics.json"):
        assert read_json(again / "out" / path) == read_json(tiny_run / "out" / path), path
