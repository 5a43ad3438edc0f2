"""The audit page served for the Prefect UI: what the schedule command serves and what the link artifact names."""

import urllib.request

from flows.serve import report_server
from flows.token_cleaning import REPORT_URL, report_link


def test_reports_folder_is_served_on_loopback(tmp_path):
    (tmp_path / "tokens.html").write_text("<!DOCTYPE html><title>audit</title>", encoding="utf-8")
    with report_server(tmp_path) as url:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}tokens.html", timeout=5) as r:
            assert r.status == 200 and b"<title>audit</title>" in r.read()


def test_the_link_is_http_when_served_and_a_file_url_otherwise(tmp_path, monkeypatch):
    monkeypatch.delenv(REPORT_URL, raising=False)
    assert report_link(tmp_path) == (tmp_path / "reports" / "tokens.html").as_uri()
    monkeypatch.setenv(REPORT_URL, "http://127.0.0.1:8123/")
    assert report_link(tmp_path) == "http://127.0.0.1:8123/tokens.html"
