"""Stage `report`: the token audit of the run as one self-contained HTML page, reports/tokens.html.

Every round with a keep mask, in ``rounds`` order: its statistics, evaluation figures and training
curve, plots, and a browsable sample of its tokens; and a few samples followed across the rounds.
``reports/tokens.json`` holds the headline numbers per round, for whatever attaches the report
somewhere (a Prefect artifact).
"""

from __future__ import annotations

from pathlib import Path

from tokenclean.audit.html import Followed, RoundReport, render_report, tint_scale
from tokenclean.audit.load import load_round
from tokenclean.audit.rounds import read_curve, round_figures
from tokenclean.audit.sample import pick_samples, rows_of_samples
from tokenclean.audit.stats import round_stats
from tokenclean.audit.summary import headline
from tokenclean.audit.token_text import TokenText
from tokenclean.config import Params
from tokenclean.io import atomic_path, write_json
from tokenclean.layout import BASE, REPORTS, LocalFiles, default_round, round_names, round_paths
from tokenclean.model.modeling import load_tokenizer
from tokenclean.stage import log, stage_main

FOLLOW = 10  # samples followed across rounds


def figures(name: str, root: Path) -> dict:
    """The round's training and evaluation figures; none for a round not trained or evaluated yet."""
    try:
        return round_figures(name, root)
    except FileNotFoundError:
        return {}


def run(params: Params, out: Path = REPORTS, root: Path = Path("."), samples: int = 50) -> None:
    """Write reports/tokens.html (figures, plots, samples of every round, samples across rounds) and
    reports/tokens.json."""
    files = LocalFiles(root)
    names = round_names(files, list(params.rounds))
    default = default_round(names)  # no round at all: stop with what to run
    text = TokenText(load_tokenizer(root / BASE))
    loaded = {n: load_round(files, round_paths(n)) for n in names}
    follow_ids = [str(i) for i in loaded[default].sample_ids[pick_samples(loaded[default], samples)[:FOLLOW]]]
    rounds, views = [], {sid: [] for sid in follow_ids}
    for n, r in loaded.items():
        stats, picked = round_stats(r, label=text.label), pick_samples(r, samples)
        where = {sid: i for i, sid in enumerate(r.sample_ids)}
        followed = [where[sid] for sid in follow_ids if sid in where]
        drawn = rows_of_samples(files, round_paths(n), r, [*picked, *followed], text)  # one read of its data
        scale = tint_scale(stats)
        for sample in drawn[len(picked):]:
            views[sample.id].append((n, sample, scale))
        curve = read_curve(root / round_paths(n).curve)
        rounds.append(RoundReport(stats, drawn[: len(picked)], figures(n, root), curve))
    follow = [Followed(sid, v) for sid, v in views.items() if len(v) > 1]
    note = f"rounds {', '.join(names)}; at most {samples} samples shown per round"
    html = render_report(rounds, "Token audit", note, follow)
    with atomic_path(out / "tokens.html") as tmp:
        tmp.write_text(html, encoding="utf-8")
    write_json({"report": str(out / "tokens.html"), "rounds": [headline(r.stats) for r in rounds]}, out / "tokens.json")
    log.info("wrote %s (%d rounds, %d samples followed across rounds, %.0f kB)", out / "tokens.html", len(rounds),
             len(follow), len(html.encode()) / 1e3)


def main(argv=None) -> None:
    stage_main("report", run, argv)


if __name__ == "__main__":
    main()
