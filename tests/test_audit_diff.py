"""`audit diff`: two hand-built masks, counted by hand; the command on two rounds of one run."""

import json

import numpy as np
import pytest
from audit_fixtures import bpe_tokenizer, build_run, fixture_samples, write_round

from tokenclean import columns as C
from tokenclean.audit.diff import gather, round_diff
from tokenclean.audit.load import RoundTokens, load_round
from tokenclean.cli.main import main
from tokenclean.layout import LocalFiles, round_paths


def hand_round(name, samples: dict) -> RoundTokens:
    """samples: id -> list of (token id, kept)."""
    lengths = [len(v) for v in samples.values()]
    flat = [x for v in samples.values() for x in v]
    return RoundTokens(name, np.array(list(samples)), np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                       np.array([t for t, _ in flat], np.int64), np.array([k for _, k in flat], bool), None, None)


A = hand_round("a", {"s0": [(5, 1), (6, 1), (7, 0)], "s1": [(5, 1), (5, 0)], "s2": [(8, 1)], "s5": [(1, 1), (2, 0)]})
B = hand_round("b", {"s1": [(5, 0), (5, 1)], "s5": [(1, 1), (3, 0)], "s3": [(9, 1)], "s0": [(5, 1), (6, 0), (7, 1)]})


def test_diff_of_two_hand_built_masks():
    d = round_diff(A, B)
    # shared: s0, s1, s5; s5 holds other tokens in B (2 vs 3), so only s0 and s1 (5 tokens) are compared
    assert (d["shared_samples"], d["compared_samples"], d["token_mismatch_samples"], d["tokens"]) == (3, 2, 1, 5)
    # s0: kept/kept, kept/dropped, dropped/kept; s1: kept/dropped, dropped/kept
    assert (d["both_kept"], d["both_dropped"], d["kept_to_dropped"], d["dropped_to_kept"]) == (1, 0, 2, 2)
    assert d["agreement"] == pytest.approx(1 / 5) and d["jaccard"] == pytest.approx(1 / 5)
    assert (d["kept_a"], d["kept_b"], d["samples_with_flips"]) == (3, 3, 2)
    assert [(t["token_id"], t["count"]) for t in d["top_kept_to_dropped"]] == [(5, 1), (6, 1)]
    assert [(t["token_id"], t["count"]) for t in d["top_dropped_to_kept"]] == [(5, 1), (7, 1)]
    assert [e["sample_id"] for e in d["examples"]] == ["s0", "s1"] and d["kinds"] is None


def test_a_mask_against_itself_agrees_fully():
    d = round_diff(A, A)
    assert (d["agreement"], d["jaccard"], d["kept_to_dropped"], d["dropped_to_kept"],
            d["examples"]) == (1.0, 1.0, 0, 0, [])
    assert d["compared_samples"] == 4


def test_gather_concatenates_sample_ranges():
    offsets = np.array([0, 3, 3, 5, 9])
    assert gather(offsets, np.array([3, 0, 1, 2])).tolist() == [5, 6, 7, 8, 0, 1, 2, 3, 4]


def test_diff_command_on_two_rounds(tmp_path, capsys):
    tok = bpe_tokenizer()
    build_run(tmp_path, tok)
    later = fixture_samples(tok)
    later[0][C.KEEP] = [True] * len(later[0][C.KEEP])  # s0 keeps every token in round r1
    write_round(tmp_path, "r1", later[:2])  # and r1 holds only s0 and s1
    assert main(["audit", "diff", "fixed", "r1", "--repo", str(tmp_path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    dropped_in_s0 = fixture_samples(tok)[0][C.KEEP].count(False)
    assert (d["shared_samples"], d["compared_samples"], d["samples_a"], d["samples_b"]) == (2, 2, 3, 2)
    assert (d["dropped_to_kept"], d["kept_to_dropped"], d["examples"][0]["sample_id"]) == (dropped_in_s0, 0, "s0")
    assert main(["audit", "diff", "fixed", "r1", "--repo", str(tmp_path), "--plain"]) == 0
    out = capsys.readouterr().out
    assert f"sample s0: {dropped_in_s0} flipped" in out and "+[re]" in out  # 're' was dropped in fixed, kept in r1


def test_fixed_against_a_self_evolving_round_of_a_real_run(tiny_run, capsys):
    files = LocalFiles(tiny_run)
    fixed, r1 = (load_round(files, round_paths(n)) for n in ("fixed", "r1"))
    assert main(["audit", "diff", "fixed", "r1", "--repo", str(tiny_run), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["shared_samples"] == d["compared_samples"] == len(r1.sample_ids) < len(fixed.sample_ids)  # r1: one chunk
    assert d["kept_b"] == int(r1.keep.sum()) and d["tokens"] == len(r1.keep)
    assert d["both_kept"] + d["both_dropped"] + d["kept_to_dropped"] + d["dropped_to_kept"] == d["tokens"]


@pytest.mark.parametrize("a, b", [("fixed", "fixed"), ("r1", "r2")])  # nothing flipped; no shared sample
def test_diff_command_where_nothing_flipped(tiny_run, capsys, a, b):
    assert main(["audit", "diff", a, b, "--repo", str(tiny_run)]) == 0
    assert "flipped: 0 kept -> dropped, 0 dropped -> kept, in 0 samples" in capsys.readouterr().out
    assert main(["audit", "diff", a, b, "--repo", str(tiny_run), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["kept_to_dropped"] == d["dropped_to_kept"] == 0 and d["examples"] == []


def test_output_that_is_not_a_terminal_gets_plain_marks(tmp_path, capsys):
    tok = bpe_tokenizer()
    build_run(tmp_path, tok)
    assert main(["audit", "show", "--repo", str(tmp_path), "--sample", "s0"]) == 0  # capsys: not a terminal
    out = capsys.readouterr().out
    assert "[" in out and "{" in out, "kept tokens in [ ], dropped in { } without --plain"
