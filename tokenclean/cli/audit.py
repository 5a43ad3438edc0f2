"""``tokenclean audit show|stats|diff``: which tokens each round kept, and how rounds differ.

Any of them reads the workspace of ``--repo``, or with ``--rev`` that repository at a git
revision through DVC (cache or remote), leaving the workspace alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

# The audit's modules (numpy, pyarrow, rich, transformers) are imported by the commands that use them,
# not here: `tokenclean --help` then answers in well under a second instead of ~5 s.
if TYPE_CHECKING:
    from tokenclean.audit.load import RoundTokens
    from tokenclean.audit.token_text import TokenText
    from tokenclean.layout import Files, RoundPaths

WEIGHTS = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.gguf")  # not needed to detokenise: never copied


@dataclass
class Run:
    """One repository at one state (workspace or revision): its files, rounds and tokenizer."""

    files: Files
    where: str  # for messages: "workspace" or "revision 'HEAD~1'"
    tokenizer: str | None = None
    _text: TokenText | None = field(default=None, repr=False)

    @cached_property
    def names(self) -> list[str]:
        from tokenclean.layout import round_names

        return round_names(self.files)

    def paths(self, name: str | None) -> RoundPaths:
        from tokenclean.layout import default_round, round_paths

        names = self.names
        name = name or default_round(names)
        if name not in names:
            raise ValueError(f"no round '{name}' in the {self.where}; rounds: {', '.join(names) or 'none'}")
        return round_paths(name)

    def load(self, name: str | None) -> RoundTokens:
        from tokenclean.audit.load import load_round

        return load_round(self.files, self.paths(name))

    def text(self) -> TokenText:
        """The run's own tokenizer (out/base at the same state), unless --tokenizer names one."""
        from tokenclean.audit.token_text import TokenText
        from tokenclean.layout import BASE
        from tokenclean.model.modeling import load_tokenizer

        if self._text is None:
            if self.tokenizer:
                self._text = TokenText(load_tokenizer(self.tokenizer))
            else:
                with tempfile.TemporaryDirectory(prefix="tokenclean-tok-") as tmp:
                    self._text = TokenText(load_tokenizer(self.files.local_dir(BASE, Path(tmp), skip=WEIGHTS)))
        return self._text


def open_run(repo: str, rev: str | None, tokenizer: str | None = None) -> Run:
    if rev is None:
        from tokenclean.layout import LocalFiles

        return Run(LocalFiles(repo), "workspace", tokenizer)
    from tokenclean.cli.revisions import RevFiles  # imports DVC only when a revision is asked for

    return Run(RevFiles(repo, rev), f"revision '{rev}'", tokenizer)


def add_parser(sub) -> None:
    audit = sub.add_parser("audit", help="which tokens each round kept or dropped (show, stats, diff)",
                           description="Which tokens each round kept or dropped, and how rounds differ. Reads the "
                           "workspace of --repo, or with --rev that repository at a git revision through DVC "
                           "(cache or remote), leaving the workspace alone.")
    actions = audit.add_subparsers(dest="action", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--repo", default=".", help="repository of the run (default: .)")
    common.add_argument("--rev", help="git revision to read the run at, through DVC; the workspace is not touched")
    common.add_argument("--tokenizer", help="tokenizer directory or hub id (default: the run's out/base)")
    common.add_argument("--plain", action="store_true", default=None,
                        help="no colour: kept tokens in [ ], dropped in { } (the default when not on a terminal)")
    show = actions.add_parser("show", parents=[common], help="one sample, response tokens marked kept or dropped")
    show.add_argument("--round", help="round name (default: fixed, else the last round)")
    show.add_argument("--sample", default="0", help="sample id, or index in the round (default: 0)")
    show.add_argument("--scores", action="store_true", help="also list every response token with its score")
    show.set_defaults(func=run_show)
    stats = actions.add_parser("stats", parents=[common], help="per round: kept share, scores, token strings, kinds")
    stats.add_argument("--round", action="append", help="round name, repeatable (default: every round)")
    stats.add_argument("--top", type=int, default=15, help="token strings listed (default: 15)")
    stats.add_argument("--json", action="store_true", help="print the statistics as JSON")
    stats.set_defaults(func=run_stats)
    diff = actions.add_parser("diff", parents=[common], help="two rounds, runs or revisions over their shared samples")
    diff.add_argument("a", metavar="ROUND[@REV]", help="first side, e.g. fixed@HEAD~1 (REV defaults to --rev)")
    diff.add_argument("b", metavar="ROUND[@REV]", help="second side, e.g. fixed or r3")
    diff.add_argument("--top", type=int, default=10, help="flipped token strings listed (default: 10)")
    diff.add_argument("--examples", type=int, default=3, help="samples with the most flips shown (default: 3)")
    diff.add_argument("--json", action="store_true", help="print the comparison as JSON")
    diff.set_defaults(func=run_diff)


def plain(args) -> bool:
    """--plain, or output that is not a terminal (a pipe or a file would lose colour-only marks)."""
    return bool(args.plain) or not sys.stdout.isatty()


def run_show(args) -> int:
    from tokenclean.audit.load import load_round
    from tokenclean.audit.sample import find_sample, sample_rows, token_data
    from tokenclean.cli import audit_render as render

    run = open_run(args.repo, args.rev, args.tokenizer)
    paths = run.paths(args.round)
    r = load_round(run.files, paths)
    row = find_sample(r, args.sample)
    sid = str(r.sample_ids[row])
    data = token_data(run.files, paths, [sid])[sid]
    rows = sample_rows(r, row, data.input_ids, data.labels, run.text())
    render.show(render.console(plain(args)), r, row, rows, scores=args.scores, plain=plain(args),
                truncated=data.truncated)
    return 0


def run_stats(args) -> int:
    from tokenclean.audit.stats import round_stats
    from tokenclean.cli import audit_render as render
    from tokenclean.layout import default_round

    run = open_run(args.repo, args.rev, args.tokenizer)
    names = args.round or run.names
    if not names:
        default_round(names)  # raises with what to run
    label = run.text().label
    stats = [round_stats(run.load(n), top=args.top, label=label) for n in names]
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        con = render.console(plain(args))
        for s in stats:
            render.stats(con, s)
    return 0


def split_spec(spec: str, rev: str | None) -> tuple[str, str | None]:
    """``ROUND[@REV]``: no ``@`` falls back to ``--rev``; an empty REV (``fixed@``) is the workspace."""
    name, at, spec_rev = spec.partition("@")
    return name, ((spec_rev or None) if at else rev)


def run_diff(args) -> int:
    from tokenclean.audit.diff import round_diff
    from tokenclean.audit.sample import find_sample, sample_rows, token_data
    from tokenclean.cli import audit_render as render

    (na, ra), (nb, rb) = split_spec(args.a, args.rev), split_spec(args.b, args.rev)
    run_a = open_run(args.repo, ra, args.tokenizer)
    run_b = run_a if rb == ra else open_run(args.repo, rb, args.tokenizer)
    a, b = run_a.load(na), run_b.load(nb)
    a_text = run_a.text()
    d = round_diff(a, b, top=args.top, examples=args.examples, label=a_text.label)
    d["a"], d["b"] = args.a, args.b
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    con = render.console(plain(args))
    render.diff(con, d)
    data = token_data(run_a.files, run_a.paths(na), [ex["sample_id"] for ex in d["examples"]])
    for ex in d["examples"]:
        ia, ib = find_sample(a, ex["sample_id"]), find_sample(b, ex["sample_id"])
        rows = sample_rows(a, ia, data[ex["sample_id"]].input_ids, data[ex["sample_id"]].labels, a_text)
        render.diff_example(con, ex, rows, b.keep[b.offsets[ib]:b.offsets[ib + 1]], plain=plain(args))
    return 0
