"""Stage `evaluate@<round>`: the round's model on the held-out split: loss, greedy-generation accuracy
where samples carry an answer, and the lm-evaluation-harness tasks listed in ``evaluate.lm_eval.tasks``."""

from __future__ import annotations

import json
import logging

from tokenclean import columns as C
from tokenclean.config import Params
from tokenclean.data.rows import load_rows
from tokenclean.evaluation.heldout import accuracy, eval_loss, generate
from tokenclean.io import read_table, write_json
from tokenclean.layout import BASE, prepared, round_paths
from tokenclean.model.checkpoint import load_checkpoint
from tokenclean.model.modeling import load_tokenizer
from tokenclean.stage import log, stage_main


def evaluate(params: Params, model_dir, data, base) -> dict:
    """Metrics of one trained model; the full lm-eval results, if any ran, under ``lm_eval_results``."""
    lm_eval = None
    if params.evaluate.lm_eval.tasks:  # fail on missing task data before any model work
        from tokenclean.evaluation.lmeval import (  # imports lm-eval (seconds) only when tasks are listed
            load_tasks,
            run_lm_eval,
        )

        logging.getLogger("lm_eval").setLevel(logging.WARNING)  # its per-request INFO lines drown the stage's log
        lm_eval = load_tasks(params.evaluate.lm_eval)
    tok = load_tokenizer(base)
    model = load_checkpoint(model_dir, base, params.model.dtype)
    rows = load_rows(data)
    metrics = {"eval_loss": eval_loss(model, rows[C.INPUT_IDS], rows[C.LABELS], tok.pad_token_id)}
    extra = read_table(data, [C.ANSWER, C.PROMPT]).to_pylist()
    with_answer = [r for r in extra if r[C.ANSWER]][: params.evaluate.limit]
    if with_answer:
        cfg = params.evaluate
        log.info("accuracy: greedy answers to %d held-out prompts, batches of %d, up to %d new tokens each",
                 len(with_answer), cfg.batch_size, cfg.max_new_tokens)
        gens = generate(model, tok, [json.loads(r[C.PROMPT]) for r in with_answer], cfg.batch_size, cfg.max_new_tokens)
        metrics["accuracy"] = accuracy(gens, [r[C.ANSWER] for r in with_answer], cfg.answer_marker)
        metrics["examples"] = [{"generation": g, "answer": r[C.ANSWER]} for g, r in list(zip(gens, with_answer))[:5]]
    if lm_eval is not None:  # last: a LoRA model is merged into its base for it
        flat, metrics["lm_eval_results"] = run_lm_eval(model, tok, params.evaluate.lm_eval, lm_eval)
        metrics.update(flat)
    return metrics


def run(params: Params, name: str, base=BASE) -> None:
    """Write out/rounds/<round>/evaluate/metrics.json (eval_loss, accuracy, lm_eval/<task>/<metric>),
    examples.json and lm_eval.json."""
    paths = round_paths(name)
    out = paths.evaluate
    m = evaluate(params, paths.model, prepared("eval"), base)
    write_json(m.pop("examples", []), out / "examples.json")
    write_json(m.pop("lm_eval_results", {}), out / "lm_eval.json")
    write_json(m, out / "metrics.json")
    log.info("%s", m)


def main(argv=None) -> None:
    stage_main("evaluate", run, argv, per_round=True)


if __name__ == "__main__":
    main()
