"""A headless Chromium driven over the DevTools protocol: enough to click through the report and to take
the screenshots in the docs. No browser-automation package: the protocol is JSON over one websocket
(``websockets`` comes with Prefect), and Debian's ``chromium`` is the browser.

    python tests/browser.py reports/tokens.html docs/img/report.png "#round-fixed .samples" [SCRIPT]

(SCRIPT, optional, runs in the page first: for example to open some samples.)
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from websockets.sync.client import connect


def chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


class Browser:
    """One headless page. ``errors`` collects every uncaught script exception the page throws."""

    def __init__(self, exe: str, width: int = 1200, height: int = 900):
        self.profile = Path(tempfile.mkdtemp(prefix="tokenclean-chromium-"))
        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0",
             f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = self._port()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=10) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self.n, self.errors = 0, []
        self.call("Runtime.enable")
        self.call("Page.enable")

    def _port(self, timeout: float = 30) -> int:
        port_file, deadline = self.profile / "DevToolsActivePort", time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_file.exists() and port_file.read_text().strip():
                return int(port_file.read_text().split()[0])
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode}")
            time.sleep(0.1)
        raise TimeoutError("chromium did not open its DevTools port")

    def call(self, method: str, **params):
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("method") == "Runtime.exceptionThrown":
                self.errors.append(msg["params"]["exceptionDetails"])
            if msg.get("id") == self.n:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def open(self, path: Path) -> None:
        self.call("Page.navigate", url=path.resolve().as_uri())
        deadline = time.monotonic() + 30
        while self.eval("document.readyState") != "complete":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path} did not load")
            time.sleep(0.05)

    def eval(self, js: str):
        r = self.call("Runtime.evaluate", expression=js, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{js!r}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def screenshot(self, out: Path, selector: str = "body") -> None:
        """A PNG of the element ``selector`` (its whole box, scrolled or not)."""
        box = self.eval(f"(function () {{ var r = document.querySelector({json.dumps(selector)})"
                        ".getBoundingClientRect(); return {x: r.left + scrollX, y: r.top + scrollY, "
                        "width: r.width, height: r.height}; })()")
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip={**box, "scale": 1})
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        self.ws.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


if __name__ == "__main__":
    page, png, selector = Path(sys.argv[1]), Path(sys.argv[2]), (sys.argv[3] if len(sys.argv) > 3 else "body")
    with Browser(chromium() or sys.exit("no chromium found (apt-get install chromium)")) as b:
        b.open(page)
        if len(sys.argv) > 4:
            b.eval(sys.argv[4])
        b.screenshot(png, selector)
    print(f"wrote {png}")
