"""Stage `report`: the token audit of the run as one self-contained HTML page, reports/tokens.html.

Every round with a keep mask, in ``rounds`` order:
its statistics, plots, and a browsable sample of its tokens. ``reports/tokens.json`` holds the
headline numbers per round, for whatever attaches the report somewhere (a Prefect artifact).
"""

from __future__ import annotations

from pathlib import Path

from tokenclean.audit.html import RoundReport, render_report
from tokenclean.audit.load import load_round
from tokenclean.audit.sample import pick_samples, rows_of_samples
from tokenclean.audit.stats import round_stats
from tokenclean.audit.summary import headline
from tokenclean.audit.token_text import TokenText
from tokenclean.config import Params
from tokenclean.io import atomic_path, write_json
from tokenclean.layout import BASE, REPORTS, LocalFiles, default_round, round_names, round_paths
from tokenclean.model.modeling import load_tokenizer
from tokenclean.stage import log, stage_main


def round_report(files: LocalFiles, name: str, text: TokenText, samples: int) -> RoundReport:
    """Statistics of one round and the token rows of up to ``samples`` of its samples."""
    r = load_round(files, round_paths(name))
    return RoundReport(round_stats(r, label=text.label),
                       rows_of_samples(files, round_paths(name), r, pick_samples(r, samples), text))


def run(params: Params, out: Path = REPORTS, root: Path = Path("."), samples: int = 50) -> None:
    """Write reports/tokens.html (statistics, plots, samples of every round) and reports/tokens.json."""
    files = LocalFiles(root)
    names = round_names(files, list(params.rounds))
    default_round(names)  # no round at all: stop with what to run
    text = TokenText(load_tokenizer(root / BASE))
    rounds = [round_report(files, n, text, samples) for n in names]
    html = render_report(rounds, "Token audit", f"rounds {', '.join(names)}; at most {samples} samples shown per round")
    with atomic_path(out / "tokens.html") as tmp:
        tmp.write_text(html, encoding="utf-8")
    write_json({"report": str(out / "tokens.html"), "rounds": [headline(r.stats) for r in rounds]}, out / "tokens.json")
    log.info("wrote %s (%d rounds, %.0f kB)", out / "tokens.html", len(rounds), len(html.encode()) / 1e3)


def main(argv=None) -> None:
    stage_main("report", run, argv)


if __name__ == "__main__":
    main()
