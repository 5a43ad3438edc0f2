"""``tokenclean init``: set the project up for your model and your data, check them, estimate the run.

    tokenclean init --model models/my-model --data data/my_sft.jsonl
    tokenclean init --model /path/to/model --data ~/gsm8k.jsonl --columns prompt=question,completion=answer \\
                    --answer answer --marker '####'
    tokenclean init --model Qwen/Qwen2.5-0.5B-Instruct --data data/sft.parquet

A model or data outside models/ and data/ is linked in (a file link, or a folder as a tree of file
links), so DVC tracks their content. params.yaml is rewritten for a real model: no tiny-model
profile (the typed defaults: LoRA r=64, lr 1e-4, 1 epoch, max_seq_len 2048, data_prop 0.6), your
model and data, no lm-eval tasks. The default run's outputs (out/, reports/) are removed, so none of
its metrics, rounds or tasks mix with yours (they stay in DVC's cache: `git checkout params.yaml
dvc.lock && dvc checkout` brings them back). Then every check of `tokenclean check` runs, and the run's
cost is estimated from the data's token count and the model's size.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from tokenclean.cli import described

HEADER = """\
# Written by `tokenclean init` for your model and data. Every key is validated (tokenclean/config.py) and
# explained in docs/pipeline.md; `python -m tokenclean.params_file` prints the effective params.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("init", help="set up params.yaml for your model and data, check them, estimate the run",
                       description=described(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a local model folder or a hub id")
    p.add_argument("--data", required=True, help="a .jsonl/.json/.parquet file or a folder of them")
    p.add_argument("--format", default="auto", help="auto | messages | sharegpt | prompt_completion | alpaca")
    p.add_argument("--columns", default="", help="the format's fields onto yours: prompt=question,completion=answer")
    p.add_argument("--answer", help="your field holding the reference answer (accuracy)")
    p.add_argument("--marker", help="the text before the final answer in answers and generations (GSM8K: ####)")
    p.add_argument("--revision", help="a hub model's commit to pin")
    p.set_defaults(func=run)


def _columns(text: str) -> dict[str, str]:
    pairs = [p.split("=", 1) for p in text.split(",") if p.strip()]
    if any(len(p) != 2 for p in pairs):
        raise ValueError(f"--columns '{text}': write format_field=your_field pairs, comma-separated")
    return {k.strip(): v.strip() for k, v in pairs}


def write_params(args, model: str, data: str):
    """params.yaml for a real model, validated before it is written."""
    import yaml

    from tokenclean.params_file import parse_params

    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["profile"] = {}
    raw["model"].update(base=model, revision=args.revision)
    raw["data"].update(source=data, format=args.format, columns=_columns(args.columns), answer=args.answer)
    raw["evaluate"]["lm_eval"]["tasks"] = []
    if args.marker:
        raw["evaluate"]["answer_marker"] = args.marker
    params = parse_params(raw)
    Path("params.yaml").write_text(HEADER + yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    return params


def run(args) -> int:
    from tokenclean.data import sources
    from tokenclean.layout import DATA, MODELS, OUT, REPORTS

    if not Path("dvc.yaml").exists() or not Path("params.yaml").exists():
        raise FileNotFoundError("run tokenclean init in the project's root (where dvc.yaml and params.yaml are)")
    model = str(sources.link_in(args.model, str(MODELS))) if sources.is_path(args.model) else args.model
    data = str(sources.link_in(args.data, str(DATA)))
    params = write_params(args, model, data)
    print(f"params.yaml: model.base {model}, data.source {data} (the previous file is in git: git diff params.yaml)")
    for folder in (OUT, REPORTS):
        if folder.exists():
            shutil.rmtree(folder)
            print(f"removed {folder}/ of the default run (in DVC's cache: dvc checkout restores it)")
    report(params)
    print("next: ./run repro   (or dvc repro evaluate@fixed export for the fixed-model round alone)")
    return 0


def report(params) -> None:
    """The checks, then the estimate of the run's cost."""
    from tokenclean.data.prepare import SPLITS
    from tokenclean.estimate import estimate, mean_tokens, model_parameters
    from tokenclean.model.modeling import base_source, load_tokenizer
    from tokenclean.preflight import base_dir, first_samples, preflight

    checked = preflight(params, say=lambda what: print(f"ok  {what}", flush=True))
    records, route, counts = checked.records, checked.route, checked.counts  # read once, by the checks
    with base_dir(params) as folder:
        tok, (name, revision) = load_tokenizer(folder), base_source(folder)
        n_params = model_parameters(name, revision)
    samples = first_samples(records, params.data, route, n=200)
    tokens = {s: int(counts[s] * mean_tokens(tok, samples.get(s, []), params.data.max_seq_len)) for s in SPLITS}
    e = estimate(params, n_params, tokens)
    print(f"estimate: {sum(tokens.values()):,} tokens ({', '.join(f'{s} {n:,}' for s, n in tokens.items())}), "
          f"{n_params / 1e6:,.1f}M parameters, {sum(e['flops'].values()):.2e} FLOPs over {len(params.rounds)} rounds")
    print(f"          {duration(e['hours_this_cpu'])} on this CPU ({e['cpu_matmul_flops'] / 1e9:.0f} GFLOP/s "
          f"float32 matmul), {duration(e['hours_gpu'])} on {e['gpu']}: a back-of-envelope figure "
          "(tokenclean/estimate.py says how)")


def duration(hours: float) -> str:
    """``about 2.5 h``, ``about 24.0 min`` or ``under 10 s``."""
    return f"about {hours:,.1f} h" if hours >= 1 else f"about {hours * 60:.1f} min" if hours * 60 >= 0.1 \
        else "under 10 s"
