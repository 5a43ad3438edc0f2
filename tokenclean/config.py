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
    # tokenizer: the tokenizer's own chat template (stop if it has none); plain: the '### Role:' template
    chat_template: Literal["tokenizer", "plain"] = "tokenizer"


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
    # its own seed, not the top-level one: the built-in base stands for a pretrained checkpoint, so
    # repeating an experiment over seeds varies fine-tuning and selection, not pretraining (as in the paper)
    seed: int = 0


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


class ComputeCfg(Strict):
    """How score, warmup and train use the hardware. Results agree within float tolerance whatever is set."""

    processes: int = Field(1, ge=1)  # data-parallel processes, one per GPU; >1 re-runs the stage under accelerate launch
    kernels: Literal["torch", "liger"] = "torch"  # liger: fused Triton kernels on CUDA (pip install 'tokenclean[gpu]')


class SelectCfg(Strict):
    strategy: Literal["global", "per_sample", "random", "full", "threshold"] = "global"
    data_prop: float = Field(0.6, gt=0, le=1)
    threshold: float = 0.0  # only for strategy 'threshold': keep tokens with score > threshold
    seed: int = 0


class LmEvalCfg(Strict):
    """lm-evaluation-harness tasks run on the trained model inside the evaluate stage."""

    tasks: list[str] = []  # task or group names: built-in ones, or YAML files in task_dir (local data)
    num_fewshot: dict[str, int] = {}  # per task; a task not listed keeps its own default (0 if it has none)
    limit: int | float | None = None  # documents per task (a share if < 1): for quick checks, never for results
    batch_size: int = Field(32, ge=1)
    task_dir: str = "lm_eval_tasks"  # the project's own task YAMLs, searched before the built-in tasks

    @model_validator(mode="after")
    def _fewshot_of_listed_tasks(self):
        extra = sorted(set(self.num_fewshot) - set(self.tasks))
        if extra:
            raise ValueError(f"num_fewshot names {extra}, which are not in tasks {self.tasks}")
        return self


class EvaluateCfg(Strict):
    batch_size: int = Field(32, ge=1)
    max_new_tokens: int = Field(48, ge=1)
    answer_marker: str = ":"  # accuracy compares the text after the last marker with the answer
    lm_eval: LmEvalCfg = LmEvalCfg()


RESERVED_ROUND_NAMES = {"base", "split"}  # folders of out/evolve/ that are not rounds


class RoundCfg(Strict):
    """One self-evolving round: where its model starts and which data it trains on."""

    prev: str  # 'base' (round 0) or an earlier round: the reference for scoring and the model training continues from
    data: str  # a chunk of the pool (out/evolve/split/<i>.parquet) or SFT files (a file or a directory)
    select: dict = {}  # overrides of evolve.select for this round only, e.g. {data_prop: 0.5}
    train: dict = {}  # overrides of evolve.train for this round only, e.g. {epochs: 2}


class EvolveCfg(Strict):
    """Self-evolving cleaning: round t scores its data as loss_base - loss_model(t-1) and continues training."""

    chunks: int = Field(5, ge=1)  # evolve_split cuts the prepared pool into this many chunks, in pool order
    select: SelectCfg = SelectCfg()
    train: FinetuneCfg = FinetuneCfg()
    rounds: dict[str, RoundCfg] = {}

    @model_validator(mode="after")
    def _chain(self):
        seen: list[str] = []
        for name, r in self.rounds.items():
            if name in RESERVED_ROUND_NAMES or not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"round name '{name}': use letters, digits, '_' or '-', not {sorted(RESERVED_ROUND_NAMES)}")
            if r.prev != "base" and r.prev not in seen:
                raise ValueError(f"round '{name}': prev '{r.prev}' must be 'base' or a round listed before it ({seen})")
            for section in ("select", "train"):
                _override(getattr(self, section), getattr(r, section), f"evolve.rounds.{name}.{section}")
            if "method" in r.train:
                raise ValueError(f"round '{name}': a round trains on its predecessor's weights, so the method is "
                                 "set once for all rounds in evolve.train.method; remove train.method")
            seen.append(name)
        return self

    def round_select(self, name: str) -> SelectCfg:
        """A round that starts from the base has no reference yet: it keeps every token."""
        r = self.rounds[name]
        cfg = _override(self.select, r.select, name)
        return cfg.model_copy(update={"strategy": "full"}) if r.prev == "base" else cfg

    def round_train(self, name: str) -> FinetuneCfg:
        return _override(self.train, self.rounds[name].train, name)


def _override(cfg: Strict, changes: dict, where: str):
    unknown = set(changes) - set(type(cfg).model_fields)
    if unknown:
        key = sorted(unknown)[0]
        close = difflib.get_close_matches(key, list(type(cfg).model_fields), n=1)
        raise ValueError(f"unknown key '{where}.{key}'" + (f"; did you mean '{close[0]}'?" if close else ""))
    return type(cfg).model_validate({**cfg.model_dump(), **changes})


class FlowsCfg(Strict):
    """Prefect flows (flows/): retries of each stage task."""

    retries: int = Field(1, ge=0)
    retry_delay_s: float = Field(10.0, ge=0)


class RetrainCfg(Strict):
    """Scheduled retraining (flows/retrain.py): new SFT files in the inbox become the next round."""

    inbox: str = "inbox"  # drop .jsonl/.json/.parquet SFT files here
    store: str = "rounds"  # consumed files move to <store>/<round>/, tracked by DVC
    metric: str = "eval_loss"  # key of out/evolve/<round>/evaluate/metrics.json compared with the previous round
    mode: Literal["min", "max"] = "min"  # min: lower is better (loss); max: higher is better (accuracy)
    tolerance: float = Field(0.05, ge=0)  # allowed regression (absolute) before a round is refused
    remote: str | None = "dvc-remote"  # DVC remote URL (a local directory by default); null: the repo's default remote
    tag_prefix: str = "round-"
    cron: str = "0 3 * * *"  # when `flows.serve` runs retrain
    interval_s: float | None = None  # if set, run every interval_s seconds instead of the cron schedule


class MethodCfg(Strict):
    """One method of the comparison: the params its experiments set, and which metrics file shows it."""

    set: dict[str, str | int | float] = {}  # params (dotted keys) an experiment of this method has
    metrics: Literal["fixed", "evolve"] = "fixed"  # out/evaluate/metrics.json, or the last round's evaluation


DEFAULT_METHODS = {
    "full_token": MethodCfg(set={"select.strategy": "full"}),
    "random": MethodCfg(set={"select.strategy": "random"}),
    "per_sample": MethodCfg(set={"select.strategy": "per_sample"}),
    "fixed_model": MethodCfg(set={"select.strategy": "global"}),
    # every experiment also runs the rounds; counting them only in the global ones gives one run per seed
    "self_evolving": MethodCfg(set={"select.strategy": "global", "evolve.select.strategy": "global"}, metrics="evolve"),
}


class CompareCfg(Strict):
    """The paper-style comparison (`tokenclean compare`): methods x seeds, and the token-share ablation."""

    methods: dict[str, MethodCfg] = DEFAULT_METHODS
    seeds: list[int] = Field([0, 1, 2], min_length=1)  # every method runs once per seed: mean ± std over them
    seed_params: list[str] = ["seed", "select.seed", "evolve.select.seed"]  # all set to the run's seed
    data_prop: float = Field(0.6, gt=0, le=1)  # token share of the main table's runs
    ablation: list[float] = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]  # token shares of the ablation
    ablation_params: list[str] = ["select.data_prop", "evolve.select.data_prop"]  # all set to the share
    ablation_methods: list[str] = ["fixed_model", "self_evolving"]
    ablation_seeds: list[int] | None = Field(None, min_length=1)  # seeds of the ablation runs; None: seeds
    metric: str = "acc"  # the lm-eval metric shown for each task

    @model_validator(mode="after")
    def _known_methods(self):
        unknown = sorted(set(self.ablation_methods) - set(self.methods))
        if unknown:
            raise ValueError(f"ablation_methods {unknown} are not in methods {list(self.methods)}")
        return self

    @property
    def ablation_seed_list(self) -> list[int]:
        return self.seeds if self.ablation_seeds is None else self.ablation_seeds


class RecoveryCfg(Strict):
    """Crash recovery (tokenclean/recovery.py). No stage lists it in dvc.yaml: it never changes a result."""

    dir: str = ".tokenclean/scratch"  # training checkpoints and scoring shards of unfinished stages
    train_every: int = Field(100, ge=0)  # optimizer steps between training checkpoints; 0: none
    score_shard_tokens: int = Field(262144, ge=1)  # tokens per saved scoring shard


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
    compute: ComputeCfg = ComputeCfg()
    evolve: EvolveCfg = EvolveCfg()
    flows: FlowsCfg = FlowsCfg()
    retrain: RetrainCfg = RetrainCfg()
    compare: CompareCfg = CompareCfg()
    recovery: RecoveryCfg = RecoveryCfg()

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
        elif e["type"] == "value_error":  # our own validators: the message says it all
            lines.append(f"  - {key}: {e['msg'].removeprefix('Value error, ')}")
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
