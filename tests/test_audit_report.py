"""The HTML report: parsed back, checked for its sections, highlighted tokens and self-containment."""

from html.parser import HTMLParser

import pyarrow.parquet as pq
from audit_fixtures import bpe_tokenizer, build_run, fixture_samples, write_round

from tasks import report
from tokenclean import columns as C
from tokenclean.audit.summary import summary_markdown
from tokenclean.io import read_json
from tokenclean.layout import round_paths
from tokenclean.params_file import parse_params


class Page(HTMLParser):
    """Sections, headings, external references, and the token spans of each sample."""

    def __init__(self, text):
        super().__init__()
        self.sections, self.headings, self.external, self.samples, self.charts = [], [], [], {}, 0
        self._sample, self._heading, self._span = None, None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.sections += [a["id"]] if tag == "section" else []
        self.charts += tag == "svg"
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
    page = Page((tmp_path / "tokens.html").read_text(encoding="utf-8"))
    rounds = list(tiny_params.rounds)  # warm-up, fixed and the self-evolving chain
    assert page.sections == ["overview", *(f"round-{n}" for n in rounds)] and not page.external
    for h in ("Overview", "Round fixed", "Score distribution", "By ground-truth kind", "Most dropped tokens",
              "Most kept tokens", "Samples (6 of 48 shown)"):
        assert h in page.headings
    assert page.charts == 4 + 3 * len(rounds)  # overview: kept share and three kinds; per round: shares, scores, kinds
    assert len(page.samples) == 6 * len(rounds)
    for (section, sid), spans in page.samples.items():
        t = pq.read_table(tiny_run / round_paths(section.removeprefix("round-")).keep)
        keep = dict(zip(t.column(C.SAMPLE_ID).to_pylist(), t.column(C.KEEP).to_pylist()))
        assert [s["kept"] for s in spans] == keep[sid]  # every response token highlighted, in order
        assert all("score " in s["title"] and s["title"].split(" · ")[1] == ("kept" if s["kept"] else "dropped")
                   for s in spans)
        assert spans[-1]["text"] == "<|end|>"  # escaped in the page, text again once parsed
    summary = read_json(tmp_path / "tokens.json")
    assert [r["round"] for r in summary["rounds"]] == rounds
    kept = pq.read_table(tiny_run / round_paths("fixed").keep).column(C.KEEP).to_pylist()
    assert summary["rounds"][rounds.index("fixed")]["kept"] == sum(map(sum, kept))
    md = summary_markdown(summary)
    assert md.splitlines()[2].startswith("| round | samples |") and "| fixed | 48 |" in md


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
    assert page.sections == ["overview", "round-fixed", "round-r2", "round-r10"]
    assert len([k for k in page.samples if k[0] == "round-r2"]) == 2
    # s2 keeps nothing: it is among the samples shown first, all its tokens dropped
    assert all(not s["kept"] for s in page.samples[("round-fixed", "s2")])
