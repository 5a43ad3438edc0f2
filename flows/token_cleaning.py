"""Flow `token_cleaning`: the pipeline of dvc.yaml as Prefect tasks, one stage per task.

Each task asks DVC to reproduce its stage; DVC decides whether it is stale and owns every
artifact, so Prefect caches nothing and passes no model around (NO_CACHE, no results).
Tasks run one after another because DVC holds a repository lock. When a round (or the
fixed-model run) has been evaluated, the flow publishes an artifact with what it kept,
its metrics and the dvc.lock hashes of its mask and checkpoint.

    ./run flow                              # everything, with Prefect's temporary local API
    ./run flow --target evaluate@fixed      # only the fixed-model round (and the warm-up it needs)
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.pipeline import Pipeline, StageFailed, lock_hashes, round_of
from tokenclean.io import read_json
from tokenclean.layout import REPORTS, round_paths
from tokenclean.params_file import load_params


def retry_unless_bad_input(task, task_run, state) -> bool:
    """A stage that exits with 2 was given bad input (tokenclean's stages say so and exit 2): running it
    again gives the same error, so only other failures (a crash, a lost machine) are retried."""
    try:
        state.result()
    except StageFailed as err:
        return err.exit_code != 2
    except Exception:  # noqa: BLE001 - any other failure may be transient
        return True
    return True


# What a stage command prints through tokenclean.stage's logging ("12:03:04 train@r1: ...") and its
# bad-input message. Only these are forwarded: this process's own log lines reach the same stderr (Prefect's
# console handler, "12:03:04.567 | INFO | ..."), and forwarding those would feed them back for ever.
STAGE_LINE = re.compile(r"^(\d\d:\d\d:\d\d \S+: |error in stage )")


@task(cache_policy=NO_CACHE, persist_result=False, retry_condition_fn=retry_unless_bad_input)
def run_stage(pipeline: Pipeline, stage: str) -> bool:
    log = get_run_logger()  # the stage's own log lines become this task run's logs, in the UI

    def forward(line: str) -> None:
        if STAGE_LINE.match(line):
            log.info("%s", line)

    ran = pipeline.repro(stage, on_line=forward)
    log.info("%s: %s", stage, "ran" if ran else "up to date, skipped")
    return ran


def round_report(root: Path, stage: str) -> dict:
    """What a round kept and reached, and the dvc.lock hashes that pin its mask and checkpoint."""
    name = round_of(stage)
    paths = round_paths(name)
    kept = read_json(root / paths.select / "summary.json")
    return {
        "round": name, "tokens": kept["tokens"], "tokens_kept": kept["tokens_kept"], "kept_share": kept["kept_share"],
        "select": read_json(root / paths.select / "metrics.json"), "evaluate": read_json(root / paths.metrics),
        "mask_md5": lock_hashes(root, f"select@{name}").get(paths.keep.as_posix()),
        "checkpoint_md5": lock_hashes(root, f"train@{name}").get(paths.train.as_posix()),
    }


def publish(report: dict) -> None:
    """The round as a table artifact ``round-<name>``: one row per figure, with a header."""
    rows = [("tokens kept", f"{report['tokens_kept']} of {report['tokens']}"),
            ("share kept", f"{report['kept_share']:.4f}")]
    rows += [(k, f"{v:.4f}" if isinstance(v, float) else str(v))
             for k, v in {**report["select"], **report["evaluate"]}.items()]
    rows += [("mask md5 (dvc.lock)", report["mask_md5"]), ("checkpoint md5 (dvc.lock)", report["checkpoint_md5"])]
    key = re.sub(r"[^a-z0-9-]+", "-", f"round-{report['round']}".lower())
    create_table_artifact([{"figure": k, "value": v} for k, v in rows], key=key,
                          description=f"token cleaning, round {report['round']}")


REPORT_URL = "TOKENCLEAN_REPORT_URL"  # where reports/ is served (the schedule command sets it)


def report_link(root: Path) -> str:
    """The audit page's address: served over HTTP when ``$TOKENCLEAN_REPORT_URL`` says where, which the
    Prefect UI can open; else its file:// URL, which a browser opens only when pasted by hand."""
    served = os.environ.get(REPORT_URL)
    return f"{served.rstrip('/')}/tokens.html" if served else (root / REPORTS / "tokens.html").as_uri()


def publish_audit(root: Path) -> None:
    """The token audit's headline numbers per round, and a link to the HTML page."""
    summary = read_json(root / REPORTS / "tokens.json")
    link = report_link(root)
    create_table_artifact(summary["rounds"], key="token-audit",
                          description=f"kept tokens per round; the full audit: {link}")
    create_link_artifact(link, link_text="token audit (HTML)", key="token-audit-html")


@flow(name="token_cleaning")
def token_cleaning(repo: str = ".", targets: list[str] | None = None) -> dict:
    """Reproduce the DVC pipeline stage by stage (or only what ``targets`` need); returns the stages that ran."""
    root = Path(repo).resolve()
    params = load_params(root / "params.yaml")
    stage_task = run_stage.with_options(retries=params.flows.retries, retry_delay_seconds=params.flows.retry_delay_s)
    ran, reports = [], []
    with Pipeline(root) as pipeline:  # holds DVC's lock: nothing else runs stages here meanwhile
        for stage in pipeline.stage_order(targets):
            if stage_task.with_options(task_run_name=stage)(pipeline, stage):
                ran.append(stage)
            if stage.startswith("evaluate@"):
                reports.append(round_report(root, stage))
                publish(reports[-1])
            if stage == "report":
                publish_audit(root)
    get_run_logger().info("ran %d stages: %s", len(ran), ran or "none (all up to date)")
    return {"ran": ran, "rounds": reports}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.token_cleaning", description=token_cleaning.__doc__)
    parser.add_argument("--repo", default=".", help="repository root (default: .)")
    parser.add_argument("--target", action="append", help="a dvc.yaml stage to bring up to date (repeatable)")
    args = parser.parse_args(argv)
    token_cleaning(repo=args.repo, targets=args.target)


if __name__ == "__main__":
    main()
