"""Selection: counts, deterministic ties, linear-time strategies, masks applied to labels only."""

import numpy as np
import pytest

from tokenclean.columns import IGNORE
from tokenclean.method.align import apply_keep, response_positions
from tokenclean.method.kinds import roc_auc
from tokenclean.method.selection import n_keep, select, split_keep, summary, top_k


def test_top_k_keeps_exactly_k_highest():
    s = np.array([0.1, 3.0, -1.0, 2.0, 0.5], np.float32)
    assert top_k(s, 2).tolist() == [False, True, False, True, False]
    assert top_k(s, 0).sum() == 0 and top_k(s, 9).all()


def test_ties_go_to_the_earliest_token_and_are_deterministic():
    s = np.array([1.0, 2.0, 1.0, 1.0, 0.0], np.float32)
    assert top_k(s, 3).tolist() == [True, True, True, False, False]


@pytest.mark.parametrize("prop", [0.3, 0.6, 1.0])
def test_global_random_per_sample_counts(prop):
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 30, size=50)
    s = rng.normal(size=lengths.sum()).astype(np.float32)
    assert select(s, lengths, "global", prop).sum() == n_keep(len(s), prop)
    assert select(s, lengths, "random", prop, seed=3).sum() == n_keep(len(s), prop)
    per = split_keep(select(s, lengths, "per_sample", prop), lengths)
    assert [int(k.sum()) for k in per] == [n_keep(n, prop) for n in lengths]


def test_random_is_seeded_and_full_keeps_all():
    s, lengths = np.zeros(100, np.float32), np.array([100])
    assert (select(s, lengths, "random", 0.5, seed=1) == select(s, lengths, "random", 0.5, seed=1)).all()
    assert (select(s, lengths, "random", 0.5, seed=1) != select(s, lengths, "random", 0.5, seed=2)).any()
    assert select(s, lengths, "full", 0.1).all()


def test_threshold_keeps_strictly_above():
    s = np.array([-1.0, 0.0, 0.5, 2.0], np.float32)
    assert select(s, np.array([4]), "threshold", 1.0, threshold=0.0).tolist() == [False, False, True, True]


def test_global_ranks_across_samples_per_sample_within():
    s = np.array([5, 4, 3, 0.1, 0.2, 0.3], np.float32)
    lengths = np.array([3, 3])
    assert select(s, lengths, "global", 0.5).tolist() == [True, True, True, False, False, False]
    assert select(s, lengths, "per_sample", 0.34).tolist() == [True, False, False, False, False, True]


def test_apply_keep_never_touches_prompt_tokens():
    labels = np.array([IGNORE, IGNORE, 7, 8, IGNORE, 9], np.int32)
    out = apply_keep(labels, np.array([False, True, True]))
    assert out.tolist() == [IGNORE, IGNORE, IGNORE, 8, IGNORE, 9]
    assert response_positions(out).tolist() == [3, 5]
    with pytest.raises(ValueError, match="3 response tokens"):
        apply_keep(labels, np.array([True]))


def test_summary_counts_samples_with_nothing_kept():
    s = np.array([1, 2, 0, 0, 3], np.float32)
    keep = np.array([True, True, False, False, True])
    info = summary(s, keep, np.array([2, 2, 1]))
    assert info["tokens_kept"] == 3 and info["samples_zero_kept"] == 1 and info["min_kept_score"] == 1.0


def test_roc_auc_hand_computed():
    # positives 3, 1; negatives 2, 0 -> pairs (3>2, 3>0, 1<2, 1>0) = 3/4
    assert roc_auc(np.array([3, 1, 2, 0.0]), np.array([True, True, False, False])) == 0.75
    assert roc_auc(np.array([1, 1.0]), np.array([True, False])) == 0.5


def test_global_selection_is_fast_enough_on_a_million_tokens():
    s = np.random.default_rng(0).normal(size=1_000_000).astype(np.float32)
    keep = select(s, np.array([len(s)]), "global", 0.6)
    assert keep.sum() == 600_000 and s[keep].min() >= s[~keep].max()
