"""Typed view of ``params.yaml``: strict models, so a typo fails at load with a suggestion.

Every stage reads its own section plus the shared ``seed``/``model``/``data`` sections;
``dvc.yaml`` lists exactly those keys per stage, so DVC re-runs a stage only when a value it
reads changes.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelCfg(Strict):
    base: str = "tiny"  # 'tiny' = the built-in Llama pretrained by the `base` stage; else hub id or dir
    revision: str | None = None  # hub revision (commit) to pin a hub model
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: bf16 on GPU, fp32 on CPU


class DataCfg(Strict):
    source: str = "synthetic"  # 'synthetic', a local file or directory, or a hub dataset name
    split: str = "train"  # split of a hub dataset
    format: Literal["auto", "messages", "prompt_completion", "alpaca"] = "auto"
    max_seq_len: int = Field(256, ge=8)
    warmup: int | float | str = 0.1  # samples (int), fraction (float) or a file; ignored if the source has one
    eval: int | float | str = 0.05  # same, for the held-out evaluation split
    seed: int = 0


class SyntheticCfg(Strict):
    lexicon: int = Field(48, ge=8, le=400)  # words the task maps to invented words
    pool: int = Field(2400, ge=1)
    warmup: int = Field(400, ge=1)
    eval: int = Field(200, ge=1)
    pretrain_docs: int = Field(6000, ge=1)
    noise: float = Field(0.5, ge=0, le=1)  # share of pool samples that carry injected noise
    seed: int = 0


class BaseCfg(Strict):
    """Shape and pretraining of the built-in tiny Llama (only used when ``model.base: tiny``)."""

    vocab_size: int = Field(1024, ge=300)
    hidden_size: int = 256
    layers: int = 4
    heads: int = 4
    intermediate_size: int = 704
    steps: int = 400
    batch_tokens: int = 8192
    lr: float = 3e-3


class FinetuneCfg(Strict):
    method: Literal["lora", "full"] = "lora"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    epochs: float = Field(1.0, gt=0)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = 0.0
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    batch_tokens: int = Field(4096, ge=16)  # tokens (with padding) per micro-batch
    grad_accum: int = Field(1, ge=1)  # micro-batches per optimizer step
    max_grad_norm: float = 1.0


class ScoreCfg(Strict):
    batch_tokens: int = Field(16384, ge=16)
    chunk: int = Field(4096, ge=1)  # response positions per LM-head chunk


class SelectCfg(Strict):
    strategy: Literal["global", "per_sample", "random", "full", "threshold"] = "global"
    data_prop: float = Field(0.6, gt=0, le=1)
    threshold: float = 0.0  # only for strategy 'threshold': keep tokens with score > threshold
    seed: int = 0


class EvaluateCfg(Strict):
    batch_size: int = Field(32, ge=1)
    max_new_tokens: int = Field(48, ge=1)
    answer_marker: str = ":"  # accuracy compares the text after the last marker with the answer


class Params(Strict):
    seed: int = 0
    model: ModelCfg = ModelCfg()
    data: DataCfg = DataCfg()
    synthetic: SyntheticCfg = SyntheticCfg()
    base: BaseCfg = BaseCfg()
    warmup: FinetuneCfg = FinetuneCfg(epochs=4)
    score: ScoreCfg = ScoreCfg()
    select: SelectCfg = SelectCfg()
    train: FinetuneCfg = FinetuneCfg()
    evaluate: EvaluateCfg = EvaluateCfg()

    @model_validator(mode="before")
    @classmethod
    def _not_none(cls, v):
        return {} if v is None else v


class ParamsError(ValueError):
    """Raised for a params file that does not parse; the message says what to change."""


def _fields_at(loc: tuple) -> list[str]:
    model: type[BaseModel] = Params
    for part in loc[:-1]:
        ann = model.model_fields.get(str(part))
        if ann is None or not isinstance(ann.annotation, type) or not issubclass(ann.annotation, BaseModel):
            return []
        model = ann.annotation
    return list(model.model_fields)


def _explain(err: ValidationError, path: str) -> str:
    lines = [f"{path}: invalid params"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(e["loc"][-1]), _fields_at(e["loc"]), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            lines.append(f"  - unknown key '{key}'{hint}")
        else:
            lines.append(f"  - {key}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def parse_params(raw: dict, path: str = "params.yaml") -> Params:
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(_explain(err, path)) from None


def load_params(path: str | Path = "params.yaml", overrides: dict | None = None) -> Params:
    """Read and validate a params file; ``overrides`` are merged section by section (tests)."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: params file not found (run from the repository root)")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    for section, values in (overrides or {}).items():
        raw[section] = {**raw.get(section, {}), **values} if isinstance(values, dict) else values
    return parse_params(raw, str(path))
