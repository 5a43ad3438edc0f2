"""Serve the `retrain` flow on the schedule of params.yaml, against a real Prefect server.

With a server configured (``PREFECT_API_URL``, or ``prefect config set PREFECT_API_URL=...``)
this serves there. Otherwise it starts ``prefect server start`` on 127.0.0.1 (SQLite under
``PREFECT_HOME``), waits until it answers, serves, and stops the server on exit.

It also serves the repository's reports/ folder over HTTP on 127.0.0.1, so the token audit that
each run links in its artifacts opens from the Prefect UI (a browser refuses ``file://`` links there).

    ./run schedule                      # cron from retrain.cron (or every retrain.interval_s seconds)
    ./run schedule --interval 600       # every 10 minutes instead
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.retrain import retrain
from flows.token_cleaning import REPORT_URL
from tokenclean.layout import REPORTS
from tokenclean.model.distributed import free_port
from tokenclean.params_file import load_params


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"`prefect server start` exited with code {proc.returncode}; see its output above")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        time.sleep(0.5)
    raise TimeoutError(f"no Prefect server answering at {url} after {timeout:.0f} s")


@contextlib.contextmanager
def local_server(port: int):
    """A `prefect server start` on loopback for as long as the block runs; yields its API URL."""
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, env={**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    url = f"http://127.0.0.1:{port}/api"
    try:
        wait_healthy(url, proc)
        print(f"Prefect server started at {url} (UI: http://127.0.0.1:{port})", flush=True)
        yield url
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
        if proc.poll() is None:
            proc.kill()


@contextlib.contextmanager
def report_server(folder: Path, port: int = 0):
    """``folder`` served read-only on 127.0.0.1 for as long as the block runs; yields its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None  # a page view is not worth a log line beside the flow runs
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def serve(repo: Path, interval: float | None = None, port: int | None = None, report_port: int = 0) -> None:
    cfg = load_params(repo / "params.yaml").retrain
    interval = interval or cfg.interval_s
    schedule = {"interval": interval} if interval else {"cron": cfg.cron}
    configured = PREFECT_API_URL.value()
    with contextlib.ExitStack() as stack:
        url = configured or stack.enter_context(local_server(port or free_port()))
        os.environ["PREFECT_API_URL"] = url  # the runner's flow-run processes inherit it
        reports = stack.enter_context(report_server((repo / REPORTS).resolve(), report_port))
        os.environ[REPORT_URL] = reports  # and this: the audit's link artifact points here
        print(f"token audit served at {reports}tokens.html", flush=True)
        stack.enter_context(temporary_settings({PREFECT_API_URL: url}))
        print(f"serving retrain for {repo} on {schedule} (one run at a time)", flush=True)
        retrain.serve(name="retrain", parameters={"repo": str(repo)}, limit=1, **schedule)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", default=".", help="repository root (default: .)")
    parser.add_argument("--interval", type=float, help="seconds between runs (overrides retrain.cron/interval_s)")
    parser.add_argument("--port", type=int, help="port of the local server started when none is configured")
    parser.add_argument("--report-port", type=int, default=0, help="port serving reports/ (default: a free one)")
    args = parser.parse_args(argv)
    serve(Path(args.repo).resolve(), args.interval, args.port, args.report_port)


if __name__ == "__main__":
    main()
