"""The report's interactions in a real headless browser (Debian's chromium; skipped where it is absent)."""

import pytest
from browser import Browser, chromium

from tasks import report

pytestmark = pytest.mark.skipif(chromium() is None, reason="needs chromium (apt-get install chromium)")

BLOCK = "document.querySelector('#round-fixed .samples')"
SAMPLES = f"Array.from({BLOCK}.querySelectorAll('.list > details.sample'))"


@pytest.fixture(scope="module")
def page(tiny_run, tiny_params, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    report.run(tiny_params, out=out, root=tiny_run, samples=12)
    with Browser(chromium()) as b:
        b.open(out / "tokens.html")
        yield b
        assert not b.errors, b.errors  # no script error in any test


def click(b, selector: str) -> None:
    b.eval(f"{BLOCK}.querySelector({selector!r}).click()")


def visible(b) -> list[str]:
    return b.eval(f"{SAMPLES}.filter(d => d.style.display !== 'none').map(d => d.dataset.id)")


def test_expand_and_collapse_all(page):
    assert page.eval(f"{SAMPLES}.filter(d => d.open).length") == 1  # the first sample opens with the page
    click(page, "button.expand")
    assert page.eval(f"{SAMPLES}.every(d => d.open)")
    click(page, "button.collapse")
    assert page.eval(f"{SAMPLES}.filter(d => d.open).length") == 0


@pytest.mark.parametrize("order", ["kept-asc", "kept-desc", "score-asc", "score-desc", "i-asc"])
def test_sort(page, order):
    page.eval(f"var s = {BLOCK}.querySelector('select.sort'); s.value = '{order}';"
              "s.dispatchEvent(new Event('change'))")
    key, direction = order.split("-")
    values = page.eval(f"{SAMPLES}.map(d => parseFloat(d.dataset['{key}']))")
    assert len(values) == 12 and values == sorted(values, reverse=direction == "desc")


def test_filter_by_id_and_by_token_text(page):
    ids = page.eval(f"{SAMPLES}.map(d => d.dataset.id)")
    box = f"var f = {BLOCK}.querySelector('input.filter'); f.value = %s; f.dispatchEvent(new Event('input'))"
    page.eval(box % repr(ids[3]))
    assert ids[3] in visible(page) and len(visible(page)) < len(ids)  # the id may occur in another's text
    page.eval(box % repr("<|end|>"))  # every sample's response ends with the end-of-turn token
    assert visible(page) == ids
    page.eval(box % repr("no token reads like this"))
    assert visible(page) == []
    page.eval(box % repr(""))
    assert visible(page) == ids


def test_tint_by_score_and_by_kept(page):
    tinted = page.eval(f"getComputedStyle({BLOCK}.querySelector('.tokens span.d')).backgroundColor")
    assert tinted.startswith("rgba(") or tinted == "rgb(255, 255, 255)"  # by score: alpha from |score|
    page.eval("var c = document.querySelector('input.bykeep'); c.click()")
    assert page.eval("document.body.classList.contains('bykeep')")
    assert page.eval(f"getComputedStyle({BLOCK}.querySelector('.tokens span.k')).backgroundColor") == \
        "rgb(201, 239, 212)"
    page.eval("document.querySelector('input.bykeep').click()")


def test_plots_and_samples_across_rounds_render(page):
    sizes = page.eval("Array.from(document.querySelectorAll('#plots svg')).map(s => s.getBBox().width)")
    assert len(sizes) >= 4 and all(w > 100 for w in sizes)  # drawn, not empty boxes
    assert page.eval("document.querySelectorAll('#follow details.sample').length") > 0
    page.eval("document.querySelector('#follow details.sample').open = true")
    assert page.eval("document.querySelector('#follow details.sample').querySelectorAll('.tokens').length") == 2
