"""Stage `report`: the token audit of the run as one self-contained HTML page, reports/tokens.html.

Every round with a keep mask, in ``rounds`` order: its statistics, evaluation figures and training
curve, plots, and a browsable sample of its tokens; and a few samples followed across the rounds.
``reports/tokens.json`` holds the headline numbers per round, for whatever attaches the report
somewhere (a Prefect artifact).
"""

from __future__ import annotations

from pathlib import Path

from tokenclean.audit.html import Followed, RoundReport, render_report, tint_scale
from tokenclean.audit.load import RoundTokens, load_round
from tokenclean.audit.rounds import read_curve, round_row
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


def figures(params: Params, name: str, root: Path) -> dict:
    """The round's training and evaluation figures; none for a round not trained or evaluated yet."""
    r = params.rounds[name]
    try:
        return round_row(list(params.rounds).index(name), name, r.reference, r.start, root)
    except FileNotFoundError:
        return {}


def followed(files: LocalFiles, loaded: dict[str, RoundTokens], ids: list[str], text: TokenText,
             scales: dict[str, float]) -> list[Followed]:
    """Each of ``ids`` in every round whose data holds it, when that is more than one round."""
    where = {n: {sid: i for i, sid in enumerate(r.sample_ids)} for n, r in loaded.items()}
    views: dict[str, list] = {sid: [] for sid in ids}
    for name, r in loaded.items():
        rows = [where[name][sid] for sid in ids if sid in where[name]]
        for sample in rows_of_samples(files, round_paths(name), r, rows, text):
            views[sample.id].append((name, sample, scales[name]))
    return [Followed(sid, v) for sid, v in views.items() if len(v) > 1]


def run(params: Params, out: Path = REPORTS, root: Path = Path("."), samples: int = 50) -> None:
    """Write reports/tokens.html (figures, plots, samples of every round, samples across rounds) and
    reports/tokens.json."""
    files = LocalFiles(root)
    names = round_names(files, list(params.rounds))
    default = default_round(names)  # no round at all: stop with what to run
    text = TokenText(load_tokenizer(root / BASE))
    loaded = {n: load_round(files, round_paths(n)) for n in names}
    rounds = []
    for n, r in loaded.items():
        stats = round_stats(r, label=text.label)
        shown = rows_of_samples(files, round_paths(n), r, pick_samples(r, samples), text)
        rounds.append(RoundReport(stats, shown, figures(params, n, root), read_curve(root / round_paths(n).curve)))
    scales = {r.stats["round"]: tint_scale(r.stats) for r in rounds}
    shown = [s.id for r in rounds if r.stats["round"] == default for s in r.samples][:FOLLOW]
    follow = followed(files, loaded, shown, text, scales)
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
