"""`audit stats`: a hand computation, a naive reference on random masks, and the select stage's own metrics."""

import json

import numpy as np
import pyarrow as pa
import pytest
from audit_fixtures import build_run

from tokenclean import columns as C
from tokenclean.audit.load import RoundTokens, load_round
from tokenclean.audit.stats import round_stats
from tokenclean.cli.main import main
from tokenclean.io import read_json, write_table
from tokenclean.layout import LocalFiles, round_paths

# Three samples of response tokens (id, kept, score, kind); sample b keeps nothing.
HAND = {
    "a": [(5, True, 1.0, 0), (6, False, -1.0, 1), (5, True, 2.0, 0)],
    "b": [(6, False, 0.5, 1), (6, False, -2.0, 2)],
    "c": [(5, True, 3.0, 0), (7, True, 0.0, 1), (6, True, 1.5, 1), (7, False, -0.5, 2)],
}


def write_hand_run(root):
    """HAND as pipeline artifacts: two prompt tokens before each response, one after."""
    p = round_paths("fixed")
    ids = list(HAND)
    toks = [[t for t, *_ in HAND[s]] for s in ids]
    column = lambda rows, t: pa.array(rows, pa.list_(t))  # noqa: E731
    write_table(pa.table({C.SAMPLE_ID: ids,
                          C.INPUT_IDS: column([[1, 2, *x, 3] for x in toks], pa.int32()),
                          C.LABELS: column([[C.IGNORE] * 2 + x + [C.IGNORE] for x in toks], pa.int32()),
                          C.KINDS: column([[-1, -1, *(k for *_, k in HAND[s]), -1] for s in ids], pa.int8())}),
                root / p.data)
    keep = column([[k for _, k, *_ in HAND[s]] for s in ids], pa.bool_())
    write_table(pa.table({C.SAMPLE_ID: ids, C.KEEP: keep}), root / p.keep)
    write_table(pa.table({C.SAMPLE_ID: ids[::-1],  # another row order: the loader must align by sample id
                          C.SCORES: column([[x for _, _, x, _ in HAND[s]] for s in ids[::-1]], pa.float32())}),
                root / p.scores)
    return root


def test_stats_match_a_hand_computation(tmp_path):
    s = round_stats(load_round(LocalFiles(write_hand_run(tmp_path)), round_paths("fixed")), top=5)
    assert (s["samples"], s["tokens"], s["kept"]) == (3, 9, 5)
    assert s["kept_share"] == pytest.approx(5 / 9)
    assert s["samples_zero_kept"] == 1 and s["zero_kept_examples"] == ["b"]
    # per-sample kept shares: a 2/3, b 0, c 3/4 -> bins [0, 0.1), [0.6, 0.7), [0.7, 0.8)
    assert s["sample_kept_share"]["counts"] == [1, 0, 0, 0, 0, 0, 1, 1, 0, 0]
    # token 6: 4 times, kept once (in c); token 7: twice, kept once; token 5: 3 times, always kept
    assert ([(t["token_id"], t["count"], t["kept"], t["dropped"]) for t in s["most_dropped"]]
            == [(6, 4, 1, 3), (7, 2, 1, 1)])
    assert ([(t["token_id"], t["kept"], t["kept_rate"]) for t in s["most_kept"]]
            == [(5, 3, 1.0), (6, 1, 0.25), (7, 1, 0.5)])
    assert s["kinds"]["answer"] == {"tokens": 3, "kept": 3, "dropped": 0, "kept_share": 1.0}
    assert s["kinds"]["boilerplate"] == {"tokens": 4, "kept": 2, "dropped": 2, "kept_share": 0.5}
    assert s["kinds"]["noise"] == {"tokens": 2, "kept": 0, "dropped": 2, "kept_share": 0.0}
    sc = s["scores"]  # all: -2 -1 -0.5 0 0.5 1 1.5 2 3; kept: 0 1 1.5 2 3; dropped: -2 -1 -0.5 0.5
    assert (sc["all"]["mean"], sc["all"]["p50"], sc["all"]["min"], sc["all"]["max"]) == (0.5, 0.5, -2.0, 3.0)
    assert (sc["kept"]["n"], sc["kept"]["mean"], sc["kept"]["p50"]) == (5, 1.5, 1.5)
    assert (sc["dropped"]["n"], sc["dropped"]["mean"], sc["dropped"]["p50"]) == (4, -0.75, -0.75)
    assert sum(sc["histogram"]["kept"]) == 5 and sum(sc["histogram"]["dropped"]) == 4


def naive_stats(samples):
    """The same statistics with plain Python loops, one token at a time."""
    counts, kept = {}, {}
    for toks in samples:
        for t, k in toks:
            counts[t] = counts.get(t, 0) + 1
            kept[t] = kept.get(t, 0) + k
    hist = [0] * 10
    for x in samples:
        if x:  # share kept in tenths, in integers
            hist[min(10 * sum(k for _, k in x) // len(x), 9)] += 1
    return counts, kept, hist, sum(1 for x in samples if not any(k for _, k in x))


def test_stats_agree_with_a_naive_reference_on_random_masks():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 12, 300)  # empty samples included
    n = int(lengths.sum())
    ids, keep = rng.integers(0, 40, n), rng.random(n) < 0.55
    r = RoundTokens("x", np.array([f"s{i}" for i in range(len(lengths))]), np.concatenate([[0], np.cumsum(lengths)]),
                    ids, keep, rng.normal(size=n).astype(np.float32), None)
    s = round_stats(r, top=40)
    split = np.split(np.stack([ids, keep], 1), np.cumsum(lengths)[:-1])
    counts, kept, hist, zero = naive_stats([[(int(t), bool(k)) for t, k in x] for x in split])
    assert {t["token_id"]: (t["count"], t["kept"]) for t in s["most_kept"]} == {
        t: (counts[t], kept[t]) for t in counts if kept[t]}
    assert {t["token_id"]: t["dropped"] for t in s["most_dropped"]} == {
        t: counts[t] - kept[t] for t in counts if counts[t] > kept[t]}
    assert s["sample_kept_share"]["counts"] == hist and s["samples_zero_kept"] == zero
    assert s["scores"]["kept"]["p50"] == pytest.approx(float(np.median(r.scores[keep])))


def test_kind_split_agrees_with_the_select_stage(tiny_run):
    s = round_stats(load_round(LocalFiles(tiny_run), round_paths("fixed")))
    m = read_json(tiny_run / "out" / "rounds" / "fixed" / "select" / "metrics.json")
    k = s["kinds"]
    assert s["kept_share"] == pytest.approx(m["kept_share"])
    assert k["answer"]["kept_share"] == pytest.approx(m["answer_kept"])
    assert 1 - k["boilerplate"]["kept_share"] == pytest.approx(m["boilerplate_dropped"])
    assert 1 - k["noise"]["kept_share"] == pytest.approx(m["noise_dropped"])


def test_a_mask_that_does_not_fit_its_data_is_refused(tmp_path):
    root = write_hand_run(tmp_path)
    p = round_paths("fixed")
    one_each = pa.array([[True]] * 3, pa.list_(pa.bool_()))
    write_table(pa.table({C.SAMPLE_ID: ["a", "b", "c"], C.KEEP: one_each}), root / p.keep)
    with pytest.raises(ValueError, match="sample 'a' has 1 values for 3 response tokens"):
        load_round(LocalFiles(root), p)
    write_table(pa.table({C.SAMPLE_ID: ["zz"], C.KEEP: pa.array([[True]], pa.list_(pa.bool_()))}), root / p.keep)
    with pytest.raises(ValueError, match="no sample 'zz'"):
        load_round(LocalFiles(root), p)


def test_stats_command_prints_every_round(tmp_path, capsys):
    build_run(tmp_path)
    assert main(["audit", "stats", "--repo", str(tmp_path), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert [s["round"] for s in stats] == ["fixed"] and stats[0]["samples_zero_kept"] == 1
    assert main(["audit", "stats", "--repo", str(tmp_path), "--plain"]) == 0
    out = capsys.readouterr().out
    assert "round fixed" in out and "most dropped tokens" in out and "1 samples with no kept token (e.g. s2)" in out


def test_stats_tables_wrap_at_the_width_instead_of_cutting(tmp_path, capsys, monkeypatch):
    build_run(tmp_path)
    monkeypatch.setenv("COLUMNS", "60")
    assert main(["audit", "stats", "--repo", str(tmp_path), "--plain"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 60
    assert "…" not in out, "no cell cut short"


def test_kept_share_by_difficulty_quartile_and_samples_left_empty(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tokenclean.audit.difficulty import kept_by_difficulty

    losses = [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0, 3.0], [4.0, 4.0, 4.0, 4.0]]  # one sample per quartile, easy first
    keep = [[True, False], [False, False], [True, True, True], [True, False, False, False]]
    ids = ["a", "b", "c", "d"]
    pq.write_table(pa.table({"sample_id": ids, "loss_base": losses, "scores": losses}), tmp_path / "scores.parquet")
    pq.write_table(pa.table({"sample_id": ids, "keep": keep}), tmp_path / "keep.parquet")
    got = kept_by_difficulty(tmp_path / "scores.parquet", tmp_path / "keep.parquet")
    assert got == {"kept_q1": 0.5, "kept_q2": 0.0, "kept_q3": 1.0, "kept_q4": 0.25, "zero_kept_share": 0.25}
    pq.write_table(pa.table({"sample_id": ids, "scores": losses}), tmp_path / "zero.parquet")  # scored against base
    assert kept_by_difficulty(tmp_path / "zero.parquet", tmp_path / "keep.parquet") == {}
