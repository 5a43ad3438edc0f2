"""Integration: `python -m flows.serve` starts a real Prefect server on loopback and serves
retrain on a short interval; an inbox file becomes a promoted round, and the runs after it,
with no new data, change nothing."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

from flows.serve import free_port
from tests.shell import ROOT, commit_all, copy_repo, env, sh
from tests.test_retrain import new_samples

pytestmark = pytest.mark.slow


def completed_runs(url: str) -> int:
    body = json.dumps({"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}).encode()
    req = urllib.request.Request(f"{url}/flow_runs/count", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def wait_for(check, what: str, log, timeout: float = 420):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with_value = check()
        if with_value:
            return with_value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}; serve log:\n{log.read_text()[-4000:]}")


def snapshot(repo, remote):
    return (sh("git rev-parse HEAD", repo), sh("git tag", repo), (repo / "dvc.lock").read_text(),
            sorted(p.name for p in remote.rglob("*")))


@pytest.fixture
def served(tmp_path_factory, reproduced_repo):
    work = tmp_path_factory.mktemp("served")
    remote, log, port = work / "remote", work / "serve.log", free_port()
    repo = copy_repo(reproduced_repo, work / "repo")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["retrain"].update(interval_s=4, remote=str(remote), tolerance=100.0)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))  # read by no stage: nothing reruns
    commit_all(repo, "baseline")
    server_env = {k: v for k, v in env().items() if k != "PREFECT_API_URL"}
    server_env.update(PREFECT_HOME=str(work / "prefect"), PREFECT_RUNNER_POLL_FREQUENCY="2",
                      PREFECT_LOGGING_LEVEL="INFO")
    proc = subprocess.Popen([sys.executable, "-m", "flows.serve", "--repo", str(repo), "--port", str(port)], cwd=ROOT,
                            env=server_env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield repo, remote, f"http://127.0.0.1:{port}/api", log
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=5)  # nothing to keep: the test's checks are done
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_scheduled_retrain_promotes_an_inbox_file_then_changes_nothing(served):
    repo, remote, url, log = served
    wait_for(lambda: "serving retrain" in log.read_text(), "the server and the runner", log, timeout=180)
    wait_for(lambda: completed_runs(url) >= 1, "a first scheduled run (no new data)", log)
    assert sh("git tag", repo) == ""
    (repo / "inbox").mkdir()
    # the file test_flows promotes, under the same name: with the shared DVC cache its stages run once
    (repo / "inbox/.batch-1.jsonl").write_text(new_samples(repo))
    (repo / "inbox/.batch-1.jsonl").rename(repo / "inbox/batch-1.jsonl")  # drop files in with a move
    wait_for(lambda: "round-r3" in sh("git tag", repo), "the new round's tag", log)
    promoted = wait_for(lambda: not any((repo / "inbox").glob("*.jsonl")) and completed_runs(url),
                        "promotion to end", log)
    lock = (repo / "dvc.lock").read_text()
    assert "train@r3" in lock and any(remote.rglob("*")), "new lock entries and objects in the remote"
    before = snapshot(repo, remote)
    wait_for(lambda: completed_runs(url) >= promoted + 1, "a scheduled run after the promotion", log)
    assert snapshot(repo, remote) == before
