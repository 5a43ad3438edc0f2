"""lm-evaluation-harness inside the evaluate stage: hand-checkable accuracies, local tasks, offline errors."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch
import yaml

from tests.shell import ROOT
from tokenclean.config import LmEvalCfg
from tokenclean.evaluation.lmeval import TaskDataMissing, build_task, run_lm_eval, task_manager, wrap_model
from tokenclean.model.modeling import tiny_llama, train_tokenizer
from tokenclean.params_file import ParamsError, parse_params

END = "<|end|>"  # a special token: always exactly one token, whatever the BPE merges


class Shape:  # the fields tiny_llama reads from BaseCfg
    hidden_size, layers, heads, intermediate_size = 32, 1, 2, 64


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(["the cat sat on the mat", "a dog ran far", "red green blue"] * 20, vocab_size=300)


def mc_task(folder, name, docs, **extra) -> LmEvalCfg:
    """A multiple-choice task over local JSONL in ``folder``, and the config that runs only it."""
    (folder / f"{name}.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    cfg = {"task": name, "dataset_path": "json",
           "dataset_kwargs": {"data_files": {"test": str(folder / f"{name}.jsonl")}},
           "test_split": "test", "output_type": "multiple_choice", "doc_to_text": "context", "doc_to_choice": "choices",
           "doc_to_target": "gold", "metric_list": [{"metric": "acc"}], "metadata": {"version": 1}, **extra}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
    return LmEvalCfg(tasks=[name], task_dir=str(folder), batch_size=4)


def uniform_model(tok):
    """Every next-token distribution uniform over the vocabulary: log p(token) = -log V."""
    torch.manual_seed(0)
    model = tiny_llama(tok, Shape)
    torch.nn.init.zeros_(model.lm_head.weight)
    return model


def test_uniform_model_picks_the_choice_with_fewest_tokens(tmp_path, tok):
    # Under a uniform model a choice of k tokens has log-likelihood -k log V, so the 1-token
    # choice always wins: it is the gold in 3 of 8 documents, so accuracy is 3/8. Few-shot
    # examples only lengthen the context, which a uniform model ignores.
    choices = [END, END * 2, END * 3]
    docs = [{"context": f"the cat {i}", "choices": choices, "gold": 0 if i < 3 else 1 + i % 2} for i in range(8)]
    cfg = mc_task(tmp_path, "fewest", docs, fewshot_split="test")
    cfg = cfg.model_copy(update={"num_fewshot": {"fewest": 2}})
    metrics, summary = run_lm_eval(uniform_model(tok), tok, cfg)
    assert metrics == {"lm_eval/fewest/acc": 3 / 8}
    assert summary["n-shot"]["fewest"] == 2 and summary["n-samples"]["fewest"]["effective"] == 8


def test_adapter_log_likelihood_is_minus_k_log_v(tok):
    from lm_eval.api.instance import Instance

    model = uniform_model(tok)
    lm = wrap_model(model, tok, batch_size=2)
    reqs = [Instance("loglikelihood", {}, ("the cat", END * k), i) for i, k in enumerate((1, 2, 3))]
    lls = [ll for ll, _ in lm.loglikelihood(reqs, disable_tqdm=True)]
    v = model.config.vocab_size
    assert lls == pytest.approx([-k * math.log(v) for k in (1, 2, 3)], abs=1e-4)


def hand_log_likelihood(model, tok, context: str, continuation: str) -> float:
    """Sum of log p(continuation tokens | everything before), the continuation being what the
    tokenisation of the whole text adds to the context's (how lm-eval splits a pair)."""
    ctx, whole = tok(context)["input_ids"], tok(context + continuation)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([whole], device=model.device)).logits[0].float(), -1)
    return sum(logp[j - 1, whole[j]].item() for j in range(len(ctx), len(whole)))


def test_accuracy_matches_a_hand_computed_choice(tmp_path, tok):
    # A random model with sharp outputs: compute each document's most likely choice by hand,
    # make it the gold in the first 4 of 7 documents and a wrong choice elsewhere: 4/7.
    torch.manual_seed(1)
    model = tiny_llama(tok, Shape).eval()
    model.lm_head.weight.data.mul_(200)  # spread the log-probabilities far beyond float noise
    choices = ["cat", "dog", "mat", "blue"]
    docs = []
    for i, context in enumerate(["the cat sat on", "a dog", "red", "the", "green blue", "far", "on the mat"]):
        lls = [hand_log_likelihood(model, tok, context, " " + c) for c in choices]
        best = max(range(4), key=lls.__getitem__)
        assert sorted(lls)[-1] - sorted(lls)[-2] > 1e-3  # no near-tie: the expected answer is unambiguous
        docs.append({"context": context, "choices": choices, "gold": best if i < 4 else (best + 1) % 4})
    metrics, _ = run_lm_eval(model, tok, mc_task(tmp_path, "hand", docs))
    assert metrics["lm_eval/hand/acc"] == pytest.approx(4 / 7)


@pytest.fixture(scope="module")
def zorbish_eval(tiny_run, tiny_params, tmp_path_factory):
    """The evaluate stage on the tiny run with the default data's two local tasks."""
    from tasks import evaluate
    from tokenclean.layout import BASE, prepared, round_paths

    lm_eval = LmEvalCfg(tasks=["zorbish_mc", "zorbish_gen"], task_dir=str(ROOT / "lm_eval_tasks"), batch_size=8)
    params = tiny_params.model_copy(update={"evaluate": tiny_params.evaluate.model_copy(update={"lm_eval": lm_eval})})
    old = os.getcwd()
    os.chdir(tiny_run)
    try:  # evaluate() itself: run() would write over the shared tiny run's metrics
        metrics = evaluate.evaluate(params, round_paths("fixed").model, prepared("eval"), BASE)
    finally:
        os.chdir(old)
    return metrics, metrics.pop("lm_eval_results")


def zorbish_docs(tiny_run):
    return [json.loads(line)
            for line in (tiny_run / "out" / "prepare" / "lm_eval" / "zorbish.jsonl").read_text().splitlines()]


def test_zorbish_docs_ask_what_training_taught(tiny_run, tiny_tokenizer, tiny_params):
    import pyarrow.parquet as pq

    from tokenclean import columns as C

    docs, table = zorbish_docs(tiny_run), pq.read_table(tiny_run / "out" / "prepare" / "eval.parquet").to_pylist()
    assert len(docs) == len(table) == tiny_params.synthetic.eval
    for doc, row in zip(docs, table):
        trained = tiny_tokenizer.decode(row[C.INPUT_IDS])  # the whole held-out conversation as the model sees it
        assert trained.startswith(doc["context"] + doc["choices"][doc["gold"]])
        assert doc["context"].endswith("=") and row[C.ANSWER].split("=")[1] == doc["answer"]
        assert len(set(doc["choices"])) == min(10, tiny_params.synthetic.lexicon)


def test_stage_reports_zorbish_accuracies_equal_to_hand_computation(tiny_run, zorbish_eval):
    from tokenclean.model.checkpoint import load_checkpoint
    from tokenclean.model.modeling import load_tokenizer

    metrics, summary = zorbish_eval
    tok = load_tokenizer(tiny_run / "out" / "base")
    model = load_checkpoint(tiny_run / "out" / "rounds" / "fixed" / "train" / "model",
                            tiny_run / "out" / "base").merge_and_unload().eval()
    docs = zorbish_docs(tiny_run)
    right = [max(d["choices"], key=lambda c: hand_log_likelihood(model, tok, d["context"], c))
             == d["choices"][d["gold"]]
             for d in docs]
    assert metrics["lm_eval/zorbish_mc/acc"] == pytest.approx(sum(right) / len(docs))
    hits = 0
    for d in docs:  # greedy continuation cut at a space, a newline or the end-of-turn token
        ids = tok(d["context"], return_tensors="pt")["input_ids"].to(model.device)
        with torch.no_grad():
            gen = model.generate(ids, max_new_tokens=16, do_sample=False, pad_token_id=tok.pad_token_id,
                                 eos_token_id=tok.eos_token_id)
        text = tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=False)
        hits += text.split(tok.eos_token)[0].split(" ")[0].split("\n")[0] == d["answer"]
    assert metrics["lm_eval/zorbish_gen/exact_match"] == pytest.approx(hits / len(docs))
    assert summary["n-samples"]["zorbish_mc"]["effective"] == len(docs)
    assert {"eval_loss", "accuracy"} <= set(metrics)


def test_missing_local_data_names_the_file_and_its_writer(tmp_path):
    cfg = mc_task(tmp_path, "gone", [{"context": "a", "choices": ["b"], "gold": 0}])
    (tmp_path / "gone.jsonl").unlink()
    with pytest.raises(TaskDataMissing, match=r"gone\.jsonl, which does not exist: it is written by the stage"):
        build_task(task_manager(cfg.task_dir, cfg.tasks), "gone", None)


def test_unknown_local_task_suggests_the_close_name():
    tm = task_manager(ROOT / "lm_eval_tasks", ["zorbish_mc"])
    with pytest.raises(ValueError, match=r"unknown lm-eval task 'zorbish_m'.*did you mean \['zorbish_mc'"):
        build_task(tm, "zorbish_m", None)


def test_fewshot_of_an_unlisted_task_is_refused():
    with pytest.raises(ParamsError, match=r"num_fewshot names \['mmlu'\], which are not in tasks"):
        parse_params({"evaluate": {"lm_eval": {"tasks": ["boolq"], "num_fewshot": {"mmlu": 5}}}})


@pytest.mark.slow  # indexes lm-eval's built-in tasks (seconds)
def test_builtin_task_without_cached_data_says_how_to_fetch_it(tmp_path):
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    code = ("from tokenclean.config import LmEvalCfg\n"
            "from tokenclean.evaluation.lmeval import TaskDataMissing, load_tasks\n"
            "try:\n    load_tasks(LmEvalCfg(tasks=['boolq', 'arc_easy'], task_dir='none'))\n"
            "except TaskDataMissing as err:\n    print(err)\n")
    # a fresh interpreter: the datasets library reads the offline switches and the cache path at import
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    message = proc.stdout
    assert message.startswith("lm-eval tasks without their data:")
    assert "lm-eval task 'boolq' cannot load its data" in message and "'aps/super_glue'" in message
    assert "lm-eval task 'arc_easy' cannot load its data" in message and str(tmp_path / "hf") in message
    assert "TaskManager().load(['boolq', 'arc_easy'])" in message and "HF_DATASETS_OFFLINE=1" in message
