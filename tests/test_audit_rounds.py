"""Which rounds a run has, in which order: params first, then folder names; unfinished rounds left out."""

import yaml

from tokenclean.layout import LocalFiles, default_round, round_names, round_paths


def touch_round(root, name, mask=True):
    paths = round_paths(name)
    for rel in (paths.data, paths.keep) if mask else (paths.data,):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).touch()


def test_fixed_only(tmp_path):
    touch_round(tmp_path, "fixed")
    assert round_names(LocalFiles(tmp_path)) == ["fixed"] and default_round(["fixed"]) == "fixed"


def test_rounds_follow_params_then_natural_folder_order(tmp_path):
    for name in ("fixed", "r0", "r1", "r2", "r10", "extra"):
        touch_round(tmp_path, name)
    touch_round(tmp_path, "r11", mask=False)  # still running: no mask yet
    (tmp_path / "out" / "rounds" / "base" / "train").mkdir(parents=True)  # the base's pointer: not a round
    assert round_names(LocalFiles(tmp_path)) == ["extra", "fixed", "r0", "r1", "r2", "r10"]
    rounds = {"fixed": {}, "r1": {"reference": "base"}, "r0": {"reference": "r1"}, "r11": {"reference": "r0"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"rounds": rounds}, sort_keys=False))
    assert round_names(LocalFiles(tmp_path)) == ["fixed", "r1", "r0", "extra", "r2", "r10"]
    assert round_names(LocalFiles(tmp_path), order=["r2"]) == ["r2", "extra", "fixed", "r0", "r1", "r10"]


def test_default_round_without_fixed_is_the_last(tmp_path):
    for name in ("r0", "r1"):
        touch_round(tmp_path, name)
    names = round_names(LocalFiles(tmp_path))
    assert names == ["r0", "r1"] and default_round(names) == "r1"
