"""Stage `prepare`: read the SFT source, render chats, label assistant tokens, split, write Parquet."""

from __future__ import annotations

from tokenclean.config import Params
from tokenclean.data.prepare import SPLITS, plan, provenance, source_path, split_records, write_splits
from tokenclean.data.synthetic import make_lexicon
from tokenclean.evaluation.lmeval_docs import translation_docs, write_docs
from tokenclean.io import write_json
from tokenclean.layout import BASE, PREPARE, prepared
from tokenclean.model.modeling import load_tokenizer
from tokenclean.stage import log, stage_main


def run(params: Params, base=BASE) -> None:
    """Write out/prepare/{warmup,pool,eval}.parquet and stats.json (and lm_eval/zorbish.jsonl for the default data)."""
    tok = load_tokenizer(base)
    records = split_records(params.data, source_path(params))
    route = plan(records, params.data)
    synthetic = params.data.source == "synthetic"
    stats, skipped, eval_samples = write_splits(records, route, params, tok, {s: prepared(s) for s in SPLITS},
                                                provenance(params, base), keep_eval=synthetic)
    for name in SPLITS:
        log.info("%s: %s", name, stats[name])
        if stats[name]["truncated"]:
            log.warning("%s: %d samples were longer than data.max_seq_len=%d and were truncated (kept; counted in "
                        "stats.json)", name, stats[name]["truncated"], params.data.max_seq_len)
    if params.data.on_error == "skip":
        stats["skipped"] = skipped or {"skipped": 0, "skipped_records": []}
        log.warning("skipped %d bad record(s) (data.on_error: skip); listed in stats.json", stats["skipped"]["skipped"])
    write_json(stats, PREPARE / "stats.json")
    if synthetic:  # the default data's own lm-eval tasks (lm_eval_tasks/zorbish_*.yaml)
        targets = make_lexicon(params.synthetic.lexicon, params.synthetic.seed).target
        write_docs(translation_docs(tok, eval_samples, targets), PREPARE / "lm_eval" / "zorbish.jsonl")


def main(argv=None) -> None:
    stage_main("prepare", run, argv)


if __name__ == "__main__":
    main()
