"""Checks before any training: what would otherwise fail late is found in seconds.

The ``check`` stage runs them right after ``base`` (before ``prepare``, so before any warm-up,
scoring or training), and ``tokenclean check`` runs them on demand. Each failure raises the
error a stage turns into one message and exit status 2:

- the model's tokenizer loads, has a chat template and an end-of-sequence token, and the model
  embeds every token id it can produce (the model's config, not its weights: seconds at any size);
- every record of the data reads and maps (all problems at once, as ``prepare`` reports them), and
  the first sample of each split renders with at least one response token within ``max_seq_len``;
- the answer field (``data.answer``) is present in every record when accuracy is asked for;
- every lm-eval task named resolves and has its data (a task whose data a later stage writes,
  such as the default data's own tasks, is only resolved).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import yaml

from tokenclean.config import Params
from tokenclean.data import sources
from tokenclean.data.formats import Problem, check, to_sample
from tokenclean.data.prepare import SPLITS, Rendered, plan, source_path, split_records
from tokenclean.errors import DataError
from tokenclean.io import write_json
from tokenclean.layout import BASE, OUT


@contextlib.contextmanager
def base_dir(params: Params, base: Path = BASE) -> Iterator[Path | None]:
    """The base folder the stages read (``out/base``), or before ``base`` has run, a temporary one
    naming ``model.base``; None for the built-in tiny model before its stage has built it."""
    if base.exists():
        yield base
        return
    if params.model.base == "tiny":
        yield None
        return
    OUT.mkdir(exist_ok=True)  # inside out/, so a local model's path resolves from the project root
    with tempfile.TemporaryDirectory(dir=OUT, prefix=".check-") as tmp:
        write_json(sources.model_source(params.model), Path(tmp) / "source.json")
        yield Path(tmp)


def model_and_tokenizer(base: Path):
    """The tokenizer, after checking the model can embed all of it; what was checked."""
    from transformers import AutoConfig

    from tokenclean.model.modeling import base_source, load_tokenizer

    try:
        tok = load_tokenizer(base)
        name, revision = base_source(base)
        config = AutoConfig.from_pretrained(name, revision=revision)
    except OSError as e:
        raise DataError(f"cannot load model.base: {str(e).splitlines()[0]}") from None
    vocab = getattr(config.get_text_config(), "vocab_size", None)
    if vocab is not None and len(tok) > vocab:
        raise ValueError(f"the tokenizer of {name} has {len(tok)} tokens but the model embeds only {vocab}, so "
                         "some token ids have no embedding: use the tokenizer that belongs to model.base")
    return tok, f"model and tokenizer: {name}, {len(tok)} tokens, {vocab} embeddings, chat template and eos"


class Checked(NamedTuple):
    """What passed, and the data as the checks read it: its records by split and the plan that routes them
    (so a caller that needs them, such as ``tokenclean init``'s estimate, does not read the data again)."""

    done: list[str]
    records: dict[str, Callable]
    route: dict
    counts: dict[str, int]  # samples per split


def data(params: Params, tok) -> Checked:
    """Every record read and mapped; the first sample of each split rendered (with a tokenizer)."""
    records = split_records(params.data, source_path(params))
    route = plan(records, params.data)
    check(route.problems, params.data.on_error, f"data.source '{params.data.source}'")
    counts = {s: sum(int((r == i).sum()) for r in route.route.values()) for i, s in enumerate(SPLITS)}
    done = [f"data: {params.data.source}, every record reads ({', '.join(f'{s} {n}' for s, n in counts.items())})"]
    if params.data.answer:
        done.append(f"answers: every record has '{params.data.answer}'")
    if tok is not None:
        rendered = Rendered(tok, params.data.max_seq_len)
        for split, (sample,) in first_samples(records, params.data, route.route).items():
            problem = rendered.add(sample)
            if problem is not None or not len(rendered):
                why = problem.reason if problem else f"no response token within data.max_seq_len={rendered.max_len}"
                raise DataError(f"the {split} split's first sample ({sample['where']}) does not render: {why}")
            rendered.take()
        done.append("chat template: the first sample of each split renders with response tokens")
    return Checked(done, records, route.route, counts)


def first_samples(records: dict[str, Callable], data, route, n: int = 1) -> dict[str, list[dict]]:
    """The first ``n`` samples routed to each split, reading no further than it takes."""
    found: dict[str, list[dict]] = {}
    for source, read in records.items():
        feeds, good = {SPLITS[int(s)] for s in set(route[source].tolist()) if s >= 0}, 0
        for got in read():
            if all(len(found.get(s, [])) >= n for s in feeds):
                break
            sample = got if isinstance(got, Problem) else to_sample(got, data)
            if isinstance(sample, Problem):
                continue
            split, good = int(route[source][good]), good + 1
            if split >= 0 and len(found.setdefault(SPLITS[split], [])) < n:
                found[SPLITS[split]].append(sample)
    return found


def written_later(task_dir: str) -> set[str]:
    """The project's own tasks whose every data file a later stage writes (under out/), read from their
    YAML without lm-eval, whose import takes seconds; a YAML that plain YAML cannot read is left out."""
    found = set()
    for path in sorted(Path(task_dir).glob("*.yaml")) if Path(task_dir).is_dir() else []:
        try:
            cfg = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:  # lm-eval's own tags (!function): lm-eval reads it
            continue
        files = (cfg.get("dataset_kwargs") or {}).get("data_files") or {}
        paths = [p for f in (files.values() if isinstance(files, dict) else [files])
                 for p in ([f] if isinstance(f, str) else f)]
        if isinstance(cfg.get("task"), str) and paths and all(Path(p).is_relative_to(OUT) for p in paths):
            found.add(cfg["task"])
    return found


def lm_eval_tasks(params: Params) -> list[str]:
    cfg = params.evaluate.lm_eval
    if not cfg.tasks:
        return []
    if not set(cfg.tasks) <= written_later(cfg.task_dir):
        from tokenclean.evaluation.lmeval import load_tasks

        load_tasks(cfg, pending=OUT)
    return [f"lm-eval tasks resolve and have their data: {', '.join(cfg.tasks)}"]


def preflight(params: Params, base: Path = BASE, say: Callable[[str], None] = print) -> Checked:
    """Run every check; what passed, in order (``say`` reports each as it passes), and the data as read."""
    done = []
    with base_dir(params, base) as folder:
        tok = None
        if folder is None:
            say("model: the built-in tiny model is built by the base stage; its tokenizer is checked then")
        else:
            tok, what = model_and_tokenizer(folder)
            done.append(what)
            say(what)
    read = data(params, tok)
    for what in [*read.done, *lm_eval_tasks(params)]:
        done.append(what)
        say(what)
    return read._replace(done=done)

