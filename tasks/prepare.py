"""Stage `prepare`: read the SFT source, render chats, label assistant tokens, split, write Parquet."""

from __future__ import annotations

from tokenclean import columns as C
from tokenclean.config import Params
from tokenclean.data.formats import check
from tokenclean.data.prepare import drop, provenance, split_sources, to_table
from tokenclean.data.synthetic import make_lexicon
from tokenclean.errors import DataError
from tokenclean.evaluation.lmeval_docs import translation_docs, write_docs
from tokenclean.io import write_json, write_table
from tokenclean.layout import BASE, PREPARE, prepared
from tokenclean.model.modeling import load_tokenizer
from tokenclean.stage import log, stage_main


def run(params: Params, base=BASE) -> None:
    """Write out/prepare/{warmup,pool,eval}.parquet and stats.json (and lm_eval/zorbish.jsonl for the default data)."""
    tok = load_tokenizer(base)
    meta = provenance(params, base)
    splits, problems = split_sources(params)
    tables, stats = {}, {}
    for name, samples in splits.items():
        tables[name], stats[name], bad = to_table(tok, drop(samples, problems), params.data.max_seq_len)
        problems += bad
    skipped = check(problems, params.data.on_error, f"data.source '{params.data.source}'")
    for name, table in tables.items():
        if table.num_rows == 0:
            raise DataError(f"split '{name}' has no sample with a response token after truncation; "
                            "raise data.max_seq_len")
        stats[name]["response_tokens"] = sum(len(x) - x.count(C.IGNORE) for x in table.column(C.LABELS).to_pylist())
        write_table(table, prepared(name), meta)
        log.info("%s: %s", name, stats[name])
        if stats[name]["truncated"]:
            log.warning("%s: %d samples were longer than data.max_seq_len=%d and were truncated (kept; counted in "
                        "stats.json)", name, stats[name]["truncated"], params.data.max_seq_len)
    if params.data.on_error == "skip":
        stats["skipped"] = skipped or {"skipped": 0, "skipped_records": []}
        log.warning("skipped %d bad record(s) (data.on_error: skip); listed in stats.json", stats["skipped"]["skipped"])
    write_json(stats, PREPARE / "stats.json")
    if params.data.source == "synthetic":  # the default data's own lm-eval tasks (lm_eval_tasks/zorbish_*.yaml)
        targets = make_lexicon(params.synthetic.lexicon, params.synthetic.seed).target
        write_docs(translation_docs(tok, splits["eval"], targets), PREPARE / "lm_eval" / "zorbish.jsonl")


def main(argv=None) -> None:
    stage_main("prepare", run, argv)


if __name__ == "__main__":
    main()
