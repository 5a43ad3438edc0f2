"""lm-evaluation-harness on a model already in memory: the tasks named in params, as flat metrics.

The model and tokenizer are the pipeline's own (the trained checkpoint, the tokenizer it was
rendered with), wrapped in lm-eval's Hugging Face adapter, so nothing is loaded from the hub
and the tokenizer is never guessed. Tasks come from the project's task folder first (YAML
files over local JSON data, no network), then from lm-eval's built-in tasks, whose data must
already be in the Hugging Face datasets cache when the run is offline.

Metrics come back as ``lm_eval/<task>/<metric>`` keys (``/<filter>`` appended when a task
reports a filter other than ``none``), flat so that ``dvc metrics show`` and experiments list
them next to the pipeline's own metrics.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path

import torch

PREFIX = "lm_eval"


class TaskDataMissing(FileNotFoundError):
    """A task's documents are not on this machine; the message says how to get them."""


class HubDataMissing(TaskDataMissing):
    """A built-in task whose dataset is not in the Hugging Face cache (and the hub is out of reach)."""


def fetch_hint(names: list[str]) -> str:
    import datasets

    listed = ", ".join(f"'{n}'" for n in names)
    return (
        f"fetch their data once where the network is reachable, into the Hugging Face cache this run reads "
        f"(now {datasets.config.HF_DATASETS_CACHE}; set HF_HOME or HF_DATASETS_CACHE to choose it):\n"
        f"  HF_HUB_OFFLINE=0 HF_DATASETS_OFFLINE=0 python -c \"from lm_eval.tasks import TaskManager; "
        f"TaskManager().load([{listed}])\"\n"
        f"then run with HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1, or remove them from evaluate.lm_eval.tasks"
    )


def task_manager(task_dir: str | Path, names: list[str]):
    """The project's tasks alone when they are all that is asked for (indexing lm-eval's
    thousands of built-in tasks costs seconds), else the project's next to the built-in ones."""
    from lm_eval.tasks import TaskManager

    task_dir = Path(task_dir)
    local = TaskManager(include_path=str(task_dir), include_defaults=False) if task_dir.is_dir() else None
    if local is not None and all(n in local.task_index for n in names):
        return local
    return TaskManager(include_path=str(task_dir) if task_dir.is_dir() else None)


def _local_files(tm, name: str) -> list[str]:
    """The local data files of a project task (none for a built-in one)."""
    entry = tm.task_index.get(name)
    files = (((entry.cfg or {}) if entry is not None else {}).get("dataset_kwargs") or {}).get("data_files") or {}
    return [p for f in (files.values() if isinstance(files, dict) else [files])
            for p in ([f] if isinstance(f, str) else f)]


def _check_local_files(tm, name: str) -> None:
    """A project task's data files must exist; datasets would otherwise report a hub lookup."""
    entry = tm.task_index.get(name)
    for path in _local_files(tm, name):
        if not Path(path).exists():
            written_by = ((entry.cfg or {}).get("metadata") or {}).get("written_by", "the stage that writes it")
            raise TaskDataMissing(
                f"lm-eval task '{name}' ({entry.yaml_path}) reads {path}, which does not exist: it is written by "
                f"{written_by}; run that first (dvc repro), or remove '{name}' from evaluate.lm_eval.tasks"
            )


def _resolve(tm, name: str) -> None:
    if name not in tm.task_index:
        close = difflib.get_close_matches(name, tm.all_tasks, n=3)
        where = (f"the task folder {tm.include_path} and " if tm.include_path
                 else "no task folder (evaluate.lm_eval.task_dir does not exist), only ")
        raise ValueError(f"unknown lm-eval task '{name}' in evaluate.lm_eval.tasks: searched {where}lm-eval's built-in "
                         "tasks" + (f"; did you mean {close}?" if close else ""))


def build_task(tm, name: str, num_fewshot: int | None) -> list:
    """The task, group or tag ``name`` ready to run, its few-shot count set on every leaf task."""
    _resolve(tm, name)
    _check_local_files(tm, name)
    try:
        loaded = tm.load([name])
    except OSError as err:  # offline hub lookups, missing cached datasets, unreadable files
        raise HubDataMissing(f"lm-eval task '{name}' cannot load its data ({err})") from None
    if num_fewshot is not None:
        for task in loaded["tasks"].values():
            task.set_config(key="num_fewshot", value=num_fewshot)
    top = loaded.get("groups", {}).get(name) or loaded["tasks"].get(name)
    return [top] if top is not None else list(loaded["tasks"].values())  # a tag: its tasks


def wrap_model(model, tokenizer, batch_size: int):
    """lm-eval's HF adapter around the in-memory model; a LoRA adapter is merged first (eval only)."""
    from lm_eval.models.huggingface import HFLM
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model = model.merge_and_unload()
    model.eval()
    # float32 log-softmax: bf16 log-probabilities are too coarse to rank close choices
    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, softmax_dtype=torch.float32)


def flatten(results: dict, names: list[str]) -> dict[str, float]:
    """``lm_eval/<task>/<metric>`` for the tasks and groups in ``names``; stderrs left out."""
    out = {}
    for task, values in results.get("results", {}).items():
        if task not in names:  # a group's subtasks stay in the summary
            continue
        for key, v in values.items():
            metric, comma, filt = key.partition(",")  # metric keys read "<metric>,<filter>"; others are bookkeeping
            number = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if not comma or "_stderr" in metric or not number:
                continue
            out[f"{PREFIX}/{task}/{metric}" + ("" if filt in ("", "none") else f"/{filt}")] = float(v)
    return out


def _json_safe(v):
    """Numbers, strings and containers as they are; NaN, infinities and objects as text (strict JSON)."""
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    if v is None or isinstance(v, (bool, int, str)) or (isinstance(v, float) and math.isfinite(v)):
        return v
    return str(v)


def summary(results: dict) -> dict:
    """What is worth keeping of lm-eval's results: every subtask's scores, shots, sample counts."""
    keep = ("results", "groups", "n-shot", "n-samples", "versions", "higher_is_better")
    return {k: _json_safe(results[k]) for k in keep if k in results}


def load_tasks(cfg, pending: Path | None = None) -> tuple:
    """The task manager and the built tasks of ``cfg`` (an :class:`~tokenclean.config.LmEvalCfg`).

    Every task is tried before failing, so one message lists all that are missing and one
    command fetches them all; the evaluate stage calls this first, before any model work. A task
    whose local data a later stage writes under ``pending`` is only resolved, not built (the check stage).
    """
    tm = task_manager(cfg.task_dir, cfg.tasks)
    tasks, missing, from_hub = [], [], []
    for name in cfg.tasks:
        try:
            later = pending is not None and any(Path(p).is_relative_to(pending) for p in _local_files(tm, name))
            if later:
                _resolve(tm, name)
                continue
            tasks += build_task(tm, name, cfg.num_fewshot.get(name))
        except TaskDataMissing as err:
            missing.append(f"- {err}")
            from_hub += [name] if isinstance(err, HubDataMissing) else []
    if missing:
        hint = [fetch_hint(from_hub)] if from_hub else []
        raise TaskDataMissing("\n".join(["lm-eval tasks without their data:", *missing, *hint]))
    return tm, tasks


def run_lm_eval(model, tokenizer, cfg, loaded: tuple | None = None) -> tuple[dict[str, float], dict]:
    """Run ``cfg.tasks`` (built by :func:`load_tasks` unless given): flat metrics and the full summary."""
    from lm_eval.api.group import Group
    from lm_eval.evaluator import simple_evaluate

    tm, tasks = loaded or load_tasks(cfg)
    results = simple_evaluate(
        model=wrap_model(model, tokenizer, cfg.batch_size), tasks=tasks, task_manager=tm, limit=cfg.limit,
        log_samples=False, bootstrap_iters=0,  # stderrs are not reported; seeds give the spread
    )
    names = [t.name if isinstance(t, Group) else t.task_name for t in tasks]  # a tag stands for its tasks
    return flatten(results, names), summary(results)
