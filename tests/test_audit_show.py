"""`tokenclean audit show`: golden output on a hand-built run, and the view of a real tiny run."""

import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from audit_fixtures import bpe_tokenizer, build_run, fixture_samples, write_round

from tokenclean import columns as C
from tokenclean.audit.load import load_round
from tokenclean.audit.sample import sample_rows, token_data
from tokenclean.audit.token_text import TokenText
from tokenclean.cli.main import main
from tokenclean.layout import LocalFiles, round_paths

GOLDEN = Path(__file__).parent / "golden"


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def check_golden(name: str, text: str) -> None:
    """Compare with tests/golden/<name> (trailing spaces ignored); TOKENCLEAN_UPDATE_GOLDEN=1 rewrites it."""
    got = "\n".join(line.rstrip() for line in text.splitlines()) + "\n"
    path = GOLDEN / name
    if os.environ.get("TOKENCLEAN_UPDATE_GOLDEN"):
        path.write_text(got)
    assert got == path.read_text(), f"{path} differs; if the change is intended, rerun with TOKENCLEAN_UPDATE_GOLDEN=1"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return build_run(tmp_path_factory.mktemp("audit_run"))


def test_show_golden_split_characters_with_scores(run_dir, capsys):
    code, out, _ = run_cli(capsys, "audit", "show", "--repo", str(run_dir), "--sample", "s1", "--scores", "--plain")
    assert code == 0
    check_golden("audit_show_s1_scores.txt", out)


def test_show_golden_by_index(run_dir, capsys):
    code, out, _ = run_cli(capsys, "audit", "show", "--repo", str(run_dir), "--sample", "-3", "--plain")
    assert code == 0 and "sample s0 (#0 of 3)" in out
    check_golden("audit_show_s0.txt", out)


def test_show_errors_name_what_is_wrong(run_dir, capsys):
    code, _, err = run_cli(capsys, "audit", "show", "--repo", str(run_dir), "--sample", "nope", "--plain")
    assert code == 2 and "no sample 'nope'" in err
    code, _, err = run_cli(capsys, "audit", "show", "--repo", str(run_dir), "--round", "r9", "--plain")
    assert code == 2 and "no round 'r9'" in err and "rounds: fixed" in err


def test_show_defaults_to_the_last_round_without_fixed(tmp_path, capsys):
    tok = bpe_tokenizer()
    tok.save_pretrained(tmp_path / "out" / "base")
    for name in ("r0", "r1"):
        write_round(tmp_path, name, fixture_samples(tok))
    code, out, _ = run_cli(capsys, "audit", "show", "--repo", str(tmp_path), "--plain")
    assert code == 0 and out.startswith("round r1 ")


def test_show_on_a_real_run_matches_its_artifacts(tiny_run, tiny_tokenizer, capsys):
    files, paths = LocalFiles(tiny_run), round_paths("fixed")
    r = load_round(files, paths)
    keep = pq.read_table(tiny_run / paths.keep).column(C.KEEP).to_pylist()
    for row in (0, 7, len(r.sample_ids) - 1):
        sid = str(r.sample_ids[row])
        input_ids, labels, _ = token_data(files, paths, [sid])[sid]
        rows = sample_rows(r, row, input_ids, labels, TokenText(tiny_tokenizer))
        resp = [t for t in rows if t.response]
        assert "".join(t.text for t in rows) == tiny_tokenizer.decode(input_ids)
        assert "".join(t.text for t in resp) == tiny_tokenizer.decode(
            np.asarray(labels)[np.asarray(labels) != C.IGNORE])
        assert [t.keep for t in resp] == keep[row]
        code, out, _ = run_cli(capsys, "audit", "show", "--repo", str(tiny_run), "--sample", sid, "--plain")
        assert code == 0 and f"{len(resp)} response tokens, {sum(keep[row])} kept" in out.splitlines()[0]


def test_a_truncated_sample_ends_with_a_mark(tmp_path, capsys):
    import pyarrow as pa

    from tokenclean.io import write_table

    run = build_run(tmp_path)
    data = pq.read_table(run / round_paths("fixed").data)
    flags = [i == 1 for i in range(data.num_rows)]  # the second sample was cut when prepared
    write_table(data.append_column(C.TRUNCATED, pa.array(flags)), run / round_paths("fixed").data)
    ids = data.column(C.SAMPLE_ID).to_pylist()
    assert [token_data(LocalFiles(run), round_paths("fixed"), [s])[s].truncated for s in ids] == flags
    for sid, cut in zip(ids, flags):
        code, out, _ = run_cli(capsys, "audit", "show", "--repo", str(run), "--sample", sid, "--plain")
        assert code == 0 and ("✂ truncated" in out) == cut
