"""Bounded memory: tables stream a batch at a time, and every streamed result equals the in-memory one,
however the rows are batched (row groups, read batches, scoring windows, selection passes)."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tokenclean import columns as C
from tokenclean.io import RowsHash, TableWriter, iter_batches, read_table, rows_hash, table_hash
from tokenclean.method.selection import STRATEGIES, kth_largest, masker, n_keep, select, top_k


def ragged(rng, n, low=0, high=9):
    return [rng.integers(-100, 50, size=rng.integers(low, high)).astype(np.int32) for _ in range(n)]


def test_lockstep_reads_stay_aligned_whatever_the_row_groups(tmp_path):
    table = pa.table({"x": list(range(17))})
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=3)
    pq.write_table(table, tmp_path / "b.parquet", row_group_size=5)
    a, b = list(iter_batches(tmp_path / "a.parquet", rows=4)), list(iter_batches(tmp_path / "b.parquet", rows=4))
    assert [t.num_rows for t in a] == [t.num_rows for t in b] == [4, 4, 4, 4, 1]
    assert all(x.equals(y) for x, y in zip(a, b))
    assert pa.concat_tables(a).equals(table)


def test_table_writer_appends_batches_atomically(tmp_path):
    schema = pa.schema([("x", pa.int64())])
    with TableWriter(tmp_path / "t.parquet", schema, {"stage": "test"}) as out:
        out.write({"x": [1, 2]})
        out.write(pa.table({"x": [3]}))
        assert not (tmp_path / "t.parquet").exists(), "nothing lands before the block ends"
    assert read_table(tmp_path / "t.parquet").column("x").to_pylist() == [1, 2, 3] and out.rows == 3
    with pytest.raises(RuntimeError), TableWriter(tmp_path / "u.parquet", schema) as out:
        out.write({"x": [1]})
        raise RuntimeError("a failed stage")
    assert not list(tmp_path.glob("*u.parquet*")), "a failed write leaves nothing"


def test_rows_hash_depends_on_rows_only():
    rng = np.random.default_rng(0)
    ids, labels = ragged(rng, 50), ragged(rng, 50)
    whole = rows_hash(ids, labels)
    h = RowsHash(2)
    for a, b in ((0, 7), (7, 7), (7, 31), (31, 50)):  # an empty batch too
        h.update(ids[a:b], labels[a:b])
    assert h.hexdigest() == whole
    arrow = [pa.array([x.tolist() for x in col], pa.list_(pa.int32())) for col in (ids, labels)]
    assert RowsHash(2).update(*arrow).hexdigest() == whole
    moved = [np.concatenate([ids[0], ids[1][:1]]), ids[1][1:], *ids[2:]]  # same values, one boundary moved
    assert rows_hash(moved, labels) != whole
    changed = [ids[0], ids[1] + 1, *ids[2:]]
    assert rows_hash(changed, labels) != whole


def test_kth_largest_is_exact_with_ties_and_signed_zeros():
    rng = np.random.default_rng(1)
    for _ in range(300):
        x = (rng.integers(-4, 5, size=rng.integers(1, 400)) * 0.25).astype(np.float32)
        x[rng.random(len(x)) < 0.2] = -0.0
        x[rng.random(len(x)) < 0.1] = rng.standard_normal() * 1e30
        k = int(rng.integers(1, len(x) + 1))
        cut, greater = kth_largest(lambda x=x: (x[i:i + 13] for i in range(0, len(x), 13)), k)
        assert cut == np.sort(x)[::-1][k - 1] and greater == int((x > cut).sum())


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_streamed_selection_equals_selection_in_memory(strategy):
    rng = np.random.default_rng(2)
    lengths = rng.integers(1, 12, size=300)
    flat = np.round(rng.standard_normal(int(lengths.sum())), 1).astype(np.float32)  # many ties
    bounds = np.r_[0, np.cumsum(lengths)]
    groups = [(bounds[a], bounds[b], lengths[a:b]) for a, b in ((0, 1), (1, 97), (97, 98), (98, 300))]

    def stream():
        return (flat[a:b] for a, b, _ in groups)

    mask = masker(strategy, 0.6, 0.1, 5, stream)
    streamed = np.concatenate([mask(flat[a:b], n) for a, b, n in groups])
    assert (streamed == select(flat, lengths, strategy, 0.6, 0.1, 5)).all()
    if strategy == "global":
        assert (streamed == top_k(flat, n_keep(len(flat), 0.6))).all()
    if strategy in ("global", "random"):
        assert streamed.sum() == n_keep(len(flat), 0.6)


def linked(work, tiny_run, *outputs):
    """A working folder whose out/ links to some of the tiny run's outputs (read only)."""
    for name in outputs:
        (work / "out" / name).parent.mkdir(parents=True, exist_ok=True)
        (work / "out" / name).symlink_to(tiny_run / "out" / name)
    return work


def test_prepare_streams_the_same_table_in_small_batches(tmp_path, tiny_run, tiny_params, monkeypatch):
    """The prepare stage run with 3-sample render batches and 4-row row groups writes the same tables."""
    from tasks import prepare
    from tokenclean.data import prepare as library

    first = {s: read_table(tiny_run / f"out/prepare/{s}.parquet") for s in library.SPLITS}
    monkeypatch.setattr(library, "BATCH", 3)
    monkeypatch.setattr("tokenclean.io.ROW_GROUP", 4)
    work = linked(tmp_path, tiny_run, "base", "generate")
    monkeypatch.chdir(work)
    prepare.run(tiny_params)
    for split, table in first.items():
        again = read_table(work / f"out/prepare/{split}.parquet")
        assert pq.ParquetFile(work / f"out/prepare/{split}.parquet").metadata.num_row_groups > 1
        columns = [C.INPUT_IDS, C.LABELS, C.KINDS]
        assert table_hash(again, columns) == table_hash(table, columns), split
        assert again.column(C.SAMPLE_ID).to_pylist() == table.column(C.SAMPLE_ID).to_pylist()


def test_scoring_in_small_windows_gives_the_same_scores(tmp_path, tiny_run, tiny_params, monkeypatch):
    """score@fixed with windows of a few 4-row batches scores every sample as one window does."""
    from tasks import score

    work = linked(tmp_path, tiny_run, "base", "rounds/warmup/train", "rounds/fixed/data")
    monkeypatch.chdir(work)
    monkeypatch.setattr("tokenclean.io.ROW_GROUP", 4)
    params = tiny_params.model_copy(update={"score": tiny_params.score.model_copy(update={"window_tokens": 100})})
    score.run(params, "fixed")
    got, want = (read_table(root / "out/rounds/fixed/score/scores.parquet") for root in (work, tiny_run))
    assert pq.ParquetFile(work / "out/rounds/fixed/score/scores.parquet").metadata.num_row_groups > 2
    assert got.column(C.SAMPLE_ID).equals(want.column(C.SAMPLE_ID))
    for name in (C.LOSS_BASE, C.LOSS_REF, C.SCORES):
        a, b = (t.column(name).combine_chunks() for t in (got, want))
        assert a.value_lengths().equals(b.value_lengths())
        np.testing.assert_allclose(a.flatten().to_numpy(), b.flatten().to_numpy(), atol=1e-5)


def test_jsonl_streams_by_newline_only(tmp_path):
    """A raw U+2028 inside a JSON string is valid JSON; a line splitter that breaks on it would cut the record."""
    import json

    from tokenclean.data.formats import read_records

    path = tmp_path / "pool.jsonl"
    records = [{"prompt": "a\u2028b", "completion": "c"}, {"prompt": "d", "completion": "e\r"}]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode())
    raws, problems = read_records(path)
    assert not problems and [r.value for r in raws] == records and [r.number for r in raws] == [1, 2]
