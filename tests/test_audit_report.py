"""The HTML report: parsed back, checked for its sections, highlighted tokens and self-containment."""

from html.parser import HTMLParser

import pyarrow.parquet as pq
from audit_fixtures import bpe_tokenizer, build_run, fixture_samples, write_round

from tasks import report
from tokenclean import columns as C
from tokenclean.audit.html import sample_html, tokens_html
from tokenclean.audit.sample import Sample, TokenRow
from tokenclean.audit.summary import summary_markdown
from tokenclean.io import read_json
from tokenclean.layout import round_paths
from tokenclean.params_file import parse_params


class Page(HTMLParser):
    """Sections, headings, external references, and the token spans of each sample."""

    def __init__(self, text):
        super().__init__()
        self.sections, self.headings, self.external, self.samples, self.charts = [], [], [], {}, {}
        self.chart_titles = []
        self._sample, self._heading, self._span = None, None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.sections += [a["id"]] if tag == "section" else []
        if tag == "svg":
            self.charts[self.sections[-1]] = self.charts.get(self.sections[-1], 0) + 1
            self.chart_titles.append(a.get("aria-label", ""))
        if tag in ("script", "img", "link", "iframe") and a.get("src", a.get("href")):
            self.external.append(a)
        if tag == "a" and not a.get("href", "#").startswith("#"):
            self.external.append(a)
        if tag == "details":
            self._sample = self.samples.setdefault((self.sections[-1], a["data-id"]), [])
        if tag in ("h2", "h3"):
            self._heading = ""
        if tag == "span" and self._sample is not None and a.get("class") in ("k", "d"):
            self._span = {"kept": a["class"] == "k", "title": a.get("title", ""), "text": ""}

    def handle_endtag(self, tag):
        if tag == "details":
            self._sample = None
        if tag in ("h2", "h3") and self._heading is not None:
            self.headings.append(self._heading)
            self._heading = None
        if tag == "span" and self._span is not None:
            self._sample.append(self._span)
            self._span = None

    def handle_data(self, data):
        if self._heading is not None:
            self._heading += data
        if self._span is not None:
            self._span["text"] += data


def test_report_of_a_real_run(tiny_run, tiny_params, tmp_path):
    report.run(tiny_params, out=tmp_path, root=tiny_run, samples=6)
    text = (tmp_path / "tokens.html").read_text(encoding="utf-8")
    page = Page(text)
    rounds = list(tiny_params.rounds)  # warm-up, fixed and the self-evolving chain
    assert page.sections == ["overview", "plots", *(f"round-{n}" for n in rounds), "follow"] and not page.external
    for h in ("Overview", "Plots", "Round fixed", "Score distribution", "By ground-truth kind", "Most dropped tokens",
              "Most kept tokens", "Samples (6 of 48 shown)", "Across rounds"):
        assert h in page.headings
    assert page.charts["overview"] == 4  # kept share and three kinds
    assert all(page.charts[f"round-{n}"] == 3 for n in rounds)  # shares, scores (log scale), kinds
    for title in ("held-out loss", "free-generation accuracy", "score AUC", "training loss", "learning rate",
                  "gradient norm (before clipping)", "kept tokens per step", "response tokens by score (log scale)"):
        assert title in page.chart_titles
    shown = {k: v for k, v in page.samples.items() if k[0] != "follow"}
    assert len(shown) == 6 * len(rounds)
    for (section, sid), spans in shown.items():
        t = pq.read_table(tiny_run / round_paths(section.removeprefix("round-")).keep)
        keep = dict(zip(t.column(C.SAMPLE_ID).to_pylist(), t.column(C.KEEP).to_pylist()))
        assert [s["kept"] for s in spans] == keep[sid]  # every response token highlighted, in order
        assert all("score " in s["title"] and s["title"].split(" · ")[1] == ("kept" if s["kept"] else "dropped")
                   for s in spans)
        assert spans[-1]["text"] == "<|end|>"  # escaped in the page, text again once parsed
    followed = [sid for section, sid in page.samples if section == "follow"]
    assert followed, "the fixed round's samples are also in the self-evolving chunks"
    for sid in followed:  # each followed sample is in the fixed round and in exactly one chunk round
        holders = [n for n in rounds if sid in pq.read_table(tiny_run / round_paths(n).keep).column(C.SAMPLE_ID)
                   .to_pylist()]
        assert len(holders) == 2  # every response token of the sample, once per round that holds it
        assert len(page.samples[("follow", sid)]) == sum(len(_keep_of(tiny_run, n, sid)) for n in holders)
    fixed = read_json(tiny_run / round_paths("fixed").metrics)
    assert f"{fixed['eval_loss']:.3f}" in text  # evaluation figures in the overview and the round's line
    assert "--t:rgba(" in text  # tokens tinted by score
    summary = read_json(tmp_path / "tokens.json")
    assert [r["round"] for r in summary["rounds"]] == rounds
    kept = pq.read_table(tiny_run / round_paths("fixed").keep).column(C.KEEP).to_pylist()
    assert summary["rounds"][rounds.index("fixed")]["kept"] == sum(map(sum, kept))
    md = summary_markdown(summary)
    assert md.splitlines()[2].startswith("| round | samples |") and "| fixed | 48 |" in md


def _keep_of(run, name: str, sid: str) -> list:
    t = pq.read_table(run / round_paths(name).keep)
    return t.column(C.KEEP).to_pylist()[t.column(C.SAMPLE_ID).to_pylist().index(sid)]


def test_a_truncated_sample_is_marked():
    rows = [TokenRow("hi", 5, 0, False), TokenRow(" there", 6, 1, True, keep=True, score=0.5)]
    assert "✂ truncated" in sample_html(Sample("s0", rows, truncated=True), 1.0, 0)
    assert "✂" not in sample_html(Sample("s0", rows, truncated=False), 1.0, 0)
    assert "rgba(58,157,93,0.42)" in tokens_html(rows, 1.0)  # half the scale: half the full tint (0.85)


def test_report_lists_rounds_in_params_order(tmp_path, tiny_params):
    tok = bpe_tokenizer()
    build_run(tmp_path, tok)
    for name in ("r10", "r2"):  # listed r2 before r10 in params; folder names sort the other way
        write_round(tmp_path, name, fixture_samples(tok)[:2])
    raw = tiny_params.model_dump(exclude_none=True)
    raw["profile"] = {}
    raw["rounds"] = {"fixed": {"data": "p", "reference": "base", "start": "base"},
                     "r2": {"data": "a.jsonl", "reference": "base", "start": "base"},
                     "r10": {"data": "b.jsonl", "reference": "r2", "start": "r2"}}
    params = parse_params(raw)
    report.run(params, out=tmp_path / "reports", root=tmp_path, samples=2)
    page = Page((tmp_path / "reports" / "tokens.html").read_text(encoding="utf-8"))
    assert page.sections == ["overview", "plots", "round-fixed", "round-r2", "round-r10", "follow"]
    assert len([k for k in page.samples if k[0] == "round-r2"]) == 2
    # s2 keeps nothing: it is among the samples shown first, all its tokens dropped
    assert all(not s["kept"] for s in page.samples[("round-fixed", "s2")])
