"""Appending a round to params.yaml without disturbing its comments or layout."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap


def append_round(path: Path, name: str, prev: str, data: str) -> None:
    """Add ``name: {data: ..., reference: prev, start: prev}`` as the last line of ``rounds``."""
    yaml = YAML()  # round-trip: comments, order and flow style survive
    yaml.preserve_quotes = True
    yaml.width = 120
    yaml.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    doc = yaml.load(path.read_text())
    rounds = doc.setdefault("rounds", CommentedMap())
    if name in rounds:
        raise ValueError(f"{path}: rounds already has a round '{name}'")
    entry = CommentedMap(data=data, reference=prev, start=prev)
    entry.fa.set_flow_style()
    rounds[name] = entry
    with path.open("w") as f:
        yaml.dump(doc, f)
