"""Typed view of ``params.yaml``: strict models, so a typo fails at load with a suggestion.

The defaults here are the one source of default values, and they suit a real pretrained model,
following the paper (LoRA r=64, alpha 16, lr 1e-4, 3% warm-up, 1 epoch, 2,048-token samples,
``data_prop`` 0.6). ``params.yaml`` may hold one ``profile`` section: values that fill in what
the other sections leave unset (the offline default's tiny-model settings live there);
:mod:`tokenclean.params_file` reads the file.
Precedence: these defaults < ``profile`` < keys set in the other sections, so
``dvc exp run -S train.epochs=2`` wins over the profile.

Every stage reads its own section plus the shared ``seed``/``model``/``data`` sections;
``dvc.yaml`` lists exactly those keys per stage, so DVC re-runs a stage only when a value it
reads changes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from tokenclean.columns import MAPPABLE, ROLES
from tokenclean.layout import BASE_ROUND as BASE
from tokenclean.layout import chunk, prepared


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelCfg(Strict):
    base: str = "tiny"  # 'tiny' = the built-in Llama pretrained by the `base` stage; else hub id or dir
    revision: str | None = None  # hub revision (commit) to pin a hub model
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: bf16 on GPU, fp32 on CPU
    # tokenizer: the tokenizer's own chat template (stop if it has none); plain: the '### Role:' template
    chat_template: Literal["tokenizer", "plain"] = "tokenizer"


class DataCfg(Strict):
    """Where the SFT data comes from and how its records read (docs/data.md)."""

    source: str = "synthetic"  # 'synthetic', a file or directory under data/, or a hub dataset name
    split: str = "train"  # split of a hub dataset
    revision: str | None = None  # hub dataset revision (a commit) to pin it
    format: Literal["auto", "messages", "sharegpt", "prompt_completion", "alpaca"] = "auto"
    # your field names for a format's fields, e.g. {prompt: question, completion: answer} or {output: response};
    # also id, meta, and a message's role/content (messages) or from/value (sharegpt)
    columns: dict[str, str] = {}
    # sharegpt: each 'from' value's role
    roles: dict[str, str] = {"human": "user", "gpt": "assistant", "system": "system"}
    field: str | None = None  # a .json file whose top level is an object: the key holding the records
    answer: str | None = None  # your field holding each sample's reference answer (accuracy); default: meta.answer
    on_error: Literal["stop", "skip"] = "stop"  # skip: leave bad records out, counted and listed in stats.json
    max_seq_len: int = Field(2048, ge=8)  # longer samples are truncated (and counted)
    warmup: int | float | str = 0.1  # samples (int), fraction (float) or a file; ignored if the source has one
    eval: int | float | str = 0.05  # same, for the held-out evaluation split
    seed: int = 0

    @model_validator(mode="after")
    def _known_fields(self):
        unknown = sorted(set(self.columns) - set(MAPPABLE))
        if unknown:
            raise ValueError(f"data.columns maps unknown field(s) {unknown}: its keys are the format's fields "
                             f"{list(MAPPABLE)}, its values your file's field names")
        bad = sorted(r for r in self.roles.values() if r not in ROLES)
        if bad:
            raise ValueError(f"data.roles maps onto {bad}; map onto system, user or assistant")
        return self


class SyntheticCfg(Strict):
    lexicon: int = Field(72, ge=8, le=73)  # words the task maps to invented words
    pool: int = Field(2400, ge=1)
    warmup: int = Field(600, ge=1)
    eval: int = Field(200, ge=1)
    pretrain_docs: int = Field(6000, ge=1)
    noise: float = Field(0.5, ge=0, le=1)  # share of pool samples that carry injected noise
    seed: int = 0


class BaseCfg(Strict):
    """Shape and pretraining of the built-in tiny Llama (only used when ``model.base: tiny``)."""

    vocab_size: int = Field(1024, ge=300)
    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    intermediate_size: int = 384
    steps: int = 150
    batch_tokens: int = 6144
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup_ratio: float = Field(0.05, ge=0, lt=1)  # linear warm-up share of the pretraining steps
    schedule: Literal["linear", "cosine"] = "cosine"  # decay to 0 after the warm-up
    # its own seed, not the top-level one: the built-in base stands for a pretrained checkpoint, so
    # repeating an experiment over seeds varies fine-tuning and selection, not pretraining (as in the paper)
    seed: int = 0


class FinetuneCfg(Strict):
    """Fine-tuning of one round (the ``train`` section, and a round's ``train`` overrides)."""

    method: Literal["lora", "full"] = "lora"  # lora: an adapter on every linear layer; full: every weight
    lora_r: int = 64
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    epochs: float = Field(1.0, gt=0)
    lr: float = Field(1e-4, gt=0)
    weight_decay: float = 0.0
    warmup_ratio: float = Field(0.03, ge=0, lt=1)  # share of the steps with a linear warm-up
    schedule: Literal["linear", "cosine"] = "linear"  # decay to 0 after the warm-up (the paper: linear)
    batch_tokens: int = Field(4096, ge=16)  # tokens (with padding) per micro-batch
    grad_accum: int = Field(1, ge=1)  # micro-batches per optimizer step
    max_grad_norm: float = 1.0


class ScoreCfg(Strict):
    batch_tokens: int = Field(16384, ge=16)
    chunk: int = Field(4096, ge=1)  # response positions per LM-head chunk
    # tokens per streamed window: batches are length-sorted within one and its losses are held
    # (at 2M tokens ~40 MB of rows and losses; a 200M-token pool is 100 windows)
    window_tokens: int = Field(2_000_000, ge=1)


class ComputeCfg(Strict):
    """How score, warmup and train use the hardware. Results agree within float tolerance whatever is set."""

    # data-parallel processes, one per GPU; >1 re-runs the stage under accelerate launch
    processes: int = Field(1, ge=1)
    kernels: Literal["torch", "liger"] = "torch"  # liger: fused Triton kernels on CUDA (pip install 'tokenclean[gpu]')
    # samples end to end in rows of batch_tokens, attention kept inside each (varlen flash attention
    # on CUDA): no compute on padding, and batches of one shape
    packing: bool = False
    # recompute each decoder layer's activations in the backward pass: ~1/3 more compute, and
    # activation memory of one layer instead of all (what lets a 1B full fine-tune fit beside its optimizer)
    gradient_checkpointing: bool = False
    # with processes > 1: shard weights, gradients and optimizer state over the processes (FSDP2
    # through accelerate), for full fine-tuning larger than one GPU; otherwise each process holds a copy (DDP)
    fsdp: bool = False
    # every decoder layer and the LM head's chunk loss through torch.compile (dynamic shapes): fuses the
    # norms, activations, residual adds and float32 log-sum-exp that run as separate kernels otherwise.
    # Measured on an H200 at 1B with packing: +38% scoring, +53% LoRA training; ~14 s of compilation first.
    # kernels: torch only (torch.compile cannot trace Liger's kernels in training, and gains nothing on them)
    compile: bool = False

    @model_validator(mode="after")
    def _compile_with_torch_kernels(self):
        if self.compile and self.kernels != "torch":
            raise ValueError("compute.compile works with compute.kernels: torch (torch.compile fuses what Liger's "
                             "kernels would, and cannot trace them in training): set one of the two")
        return self


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
    max_new_tokens: int = Field(48, ge=1)  # greedy generation per held-out prompt (accuracy)
    # accuracy compares the text after the last marker in a generation with the same of the reference answer
    # (GSM8K: "####"), numbers as numbers ("$1,200.00" == "1200")
    answer_marker: str = ":"
    limit: int | None = Field(None, ge=1)  # held-out samples answered by greedy generation; null: all
    lm_eval: LmEvalCfg = LmEvalCfg()


class SplitCfg(Strict):
    chunks: int = Field(5, ge=1)  # the split stage cuts the prepared pool into this many chunks, in pool order


class ExportCfg(Strict):
    """The export stage: each round's cleaned data as a dataset any trainer takes (docs/export.md)."""

    jsonl: bool = False  # also write out/export/<round>.jsonl beside the Parquet file


def _partial(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` with every field optional: a round's overrides, typed like the section they override.
    Constraints are checked when the overrides are merged into the section (:meth:`Params.round_train`)."""
    fields = {k: (f.annotation | None, None) for k, f in model.model_fields.items()}
    return create_model(f"{model.__name__}Override", __base__=Strict, **fields)


SelectOverride = _partial(SelectCfg)
FinetuneOverride = _partial(FinetuneCfg)
RESERVED_ROUND_NAMES = {BASE}  # 'base': the model every round can name as reference or start (out/base)


class RoundCfg(Strict):
    """One round: its data, the model its tokens are scored against, the model its training starts from.

    The fixed-model run is the round ``fixed`` (reference: the warm-up round, start: the base); a
    self-evolving round has reference = start = its predecessor. A round whose reference is the base
    has nothing to compare against and keeps every token (the warm-up round, a chain's round 0).
    """

    data: str  # a prepared split or chunk (out/prepare/*.parquet, out/split/<i>.parquet) or SFT files
    reference: str  # 'base' or a round listed before: score = loss_base - loss_reference
    start: str  # 'base' or a round listed before: the weights training continues from
    select: SelectOverride = SelectOverride()  # e.g. {data_prop: 0.5}: this round only
    train: FinetuneOverride = FinetuneOverride()  # e.g. {epochs: 2}: this round only


def default_rounds(chunks: int = 5) -> dict[str, RoundCfg]:
    """The warm-up reference, the fixed-model round, and a self-evolving chain over the pool's chunks that
    starts from the warm-up model (docs/rounds.md says why)."""
    rounds = {"warmup": RoundCfg(data=prepared("warmup").as_posix(), reference=BASE, start=BASE),
              "fixed": RoundCfg(data=prepared("pool").as_posix(), reference="warmup", start=BASE)}
    prev = "warmup"
    for i in range(chunks):
        rounds[f"r{i}"] = RoundCfg(data=chunk(i).as_posix(), reference=prev, start=prev)
        prev = f"r{i}"
    return rounds


class FlowsCfg(Strict):
    """Prefect flows (flows/): retries of each stage task."""

    retries: int = Field(1, ge=0)
    retry_delay_s: float = Field(10.0, ge=0)


class RetrainCfg(Strict):
    """Scheduled retraining (flows/retrain.py): new SFT files in the inbox become the next round."""

    inbox: str = "inbox"  # drop .jsonl/.json/.parquet SFT files here
    store: str = "rounds"  # consumed files move to <store>/<round>/, tracked by DVC
    metric: str = "eval_loss"  # key of out/rounds/<round>/evaluate/metrics.json compared with the previous round
    mode: Literal["min", "max"] = "min"  # min: lower is better (loss); max: higher is better (accuracy)
    tolerance: float = Field(0.05, ge=0)  # allowed regression (absolute) before a round is refused
    remote: str | None = "dvc-remote"  # DVC remote URL (a local directory by default); null: the repo's default remote
    tag_prefix: str = "round-"
    cron: str = "0 3 * * *"  # when `flows.serve` runs retrain
    interval_s: float | None = None  # if set, run every interval_s seconds instead of the cron schedule


class MethodCfg(Strict):
    """One method of the comparison: the params its experiments set, and which round's metrics show it."""

    set: dict[str, str | int | float] = {}  # params (dotted keys) an experiment of this method has
    metrics: Literal["fixed", "evolve"] = "fixed"  # round 'fixed', or the last round of the run's rounds


DEFAULT_METHODS = {
    "full_token": MethodCfg(set={"select.strategy": "full"}),
    "random": MethodCfg(set={"select.strategy": "random"}),
    "per_sample": MethodCfg(set={"select.strategy": "per_sample"}),
    "fixed_model": MethodCfg(set={"select.strategy": "global"}),
    # every experiment also runs the rounds; counting them only in the global ones gives one run per seed
    "self_evolving": MethodCfg(set={"select.strategy": "global"}, metrics="evolve"),
}


class CompareCfg(Strict):
    """The paper-style comparison (`tokenclean compare`): methods x seeds, and the token-share ablation."""

    methods: dict[str, MethodCfg] = DEFAULT_METHODS
    seeds: list[int] = Field([0, 1, 2, 3, 4], min_length=1)  # every method runs once per seed: mean ± SE over them
    seed_params: list[str] = ["seed", "select.seed"]  # all set to the run's seed
    data_prop: float = Field(0.6, gt=0, le=1)  # token share of the main table's runs
    ablation: list[float] = [0.2, 0.4, 0.6, 0.8, 1.0]  # token shares of the ablation
    ablation_params: list[str] = ["select.data_prop"]  # all set to the share
    ablation_methods: list[str] = ["fixed_model", "self_evolving"]
    ablation_seeds: list[int] | None = Field([0, 1, 2], min_length=1)  # seeds of the ablation runs; None: seeds
    metric: str = "acc"  # the lm-eval metric shown for each task
    free_generation: str | None = "accuracy"  # the evaluate metric of free generation, shown beside the tasks
    baseline: str | None = "full_token"  # each method minus this one, paired by seed; None: no differences

    @model_validator(mode="after")
    def _known_baseline(self):
        if self.baseline is not None and self.baseline not in self.methods:
            raise ValueError(f"baseline {self.baseline!r} is not in methods {list(self.methods)}")
        return self

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
    profile: dict = {}  # fills in keys the other sections leave unset (see the module docstring)
    model: ModelCfg = ModelCfg()
    data: DataCfg = DataCfg()
    synthetic: SyntheticCfg = SyntheticCfg()
    base: BaseCfg = BaseCfg()
    split: SplitCfg = SplitCfg()
    score: ScoreCfg = ScoreCfg()
    select: SelectCfg = SelectCfg()
    train: FinetuneCfg = FinetuneCfg()
    evaluate: EvaluateCfg = EvaluateCfg()
    compute: ComputeCfg = ComputeCfg()
    export: ExportCfg = ExportCfg()
    rounds: dict[str, RoundCfg] = default_rounds()
    flows: FlowsCfg = FlowsCfg()
    retrain: RetrainCfg = RetrainCfg()
    compare: CompareCfg = CompareCfg()
    recovery: RecoveryCfg = RecoveryCfg()

    @model_validator(mode="before")
    @classmethod
    def _not_none(cls, v):
        return {} if v is None else v

    @model_validator(mode="after")
    def _round_chain(self):
        seen: list[str] = []
        for name, r in self.rounds.items():
            if name in RESERVED_ROUND_NAMES or not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"round name '{name}': use letters, digits, '_' or '-', "
                                 f"not {sorted(RESERVED_ROUND_NAMES)}")
            for role in ("reference", "start"):
                model = getattr(r, role)
                if model != BASE and model not in seen:
                    raise ValueError(f"rounds.{name}.{role}: '{model}' must be 'base' "
                                     f"or a round listed before it ({seen})")
            if r.reference == BASE and r.select.model_dump(exclude_none=True):
                raise ValueError(f"rounds.{name}.select: a round scored against the base keeps every token, so "
                                 "selection overrides do nothing there; remove them")
            if r.start != BASE and r.train.method is not None:
                raise ValueError(f"rounds.{name}.train.method: a round that starts from round '{r.start}' "
                                 "trains on its weights, so it keeps that round's method; remove it")
            self.round_select(name), self.round_train(name)  # overrides that break a constraint fail here
            seen.append(name)
        return self

    def round_select(self, name: str) -> SelectCfg:
        """The round's selection: ``select`` with its overrides; every token when its reference is the base."""
        r = self.rounds[name]
        if r.reference == BASE:  # fixed, not read from `select`: a change there must not touch this round
            return SelectCfg(strategy="full", data_prop=1.0)
        return _override(self.select, r.select)

    def round_train(self, name: str) -> FinetuneCfg:
        """The round's fine-tuning: ``train`` with its overrides (a continued round keeps its start's method)."""
        r = self.rounds[name]
        cfg = _override(self.train, r.train)
        return cfg if r.start == BASE else cfg.model_copy(update={"method": self.round_train(r.start).method})


def _override(cfg: Strict, changes: BaseModel) -> Strict:
    return type(cfg).model_validate({**cfg.model_dump(), **changes.model_dump(exclude_none=True)})
