"""SFT records read as the prepare stage reads them."""

from __future__ import annotations

from pathlib import Path


def samples_of(path: Path, **data) -> list[dict]:
    """The samples of one SFT file as ``prepare`` reads them (``data``: keys of the data section);
    bad records raise the stage's DataError."""
    from tokenclean.config import DataCfg
    from tokenclean.data.formats import check, normalise, read_records

    cfg = DataCfg(**data)
    raws, problems = read_records(Path(path), cfg.field)
    samples, bad = normalise(raws, cfg)
    check(problems + bad, cfg.on_error, str(path))
    return samples
