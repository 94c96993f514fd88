"""A real headless browser for the report tests: Debian's chromium (installed by `make test`), driven over the
DevTools protocol (websocket-client, in the lock). It loads a page with JavaScript disabled, and returns the
rendered DOM, a full-page screenshot and every request the page made (Network.requestWillBeSent: the page's
own, not the browser's background traffic)."""
from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from typing import Any, Dict, List

CHROMIUM = "chromium"
LOAD_TIMEOUT_S = 60


@dataclasses.dataclass
class Page:
    dom: str  # the rendered document's outer HTML
    screenshot: bytes  # PNG of the whole page
    requests: List[str]  # URLs the page requested, its own URL first


def chromium_path() -> str:
    path = shutil.which(CHROMIUM)
    if path is None:
        raise RuntimeError("Debian's chromium is not installed: `make test` installs it (see README, Tests)")
    return path


class _DevTools:
    def __init__(self, websocket_url: str):
        import websocket

        self._socket = websocket.create_connection(websocket_url, timeout=LOAD_TIMEOUT_S, suppress_origin=True)
        self._next_id = 0
        self.events: List[Dict[str, Any]] = []

    def call(self, method: str, **params) -> Dict[str, Any]:
        self._next_id += 1
        self._socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv())
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout_s: float = LOAD_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {timeout_s} s")
            self.events.append(json.loads(self._socket.recv()))

    def close(self) -> None:
        self._socket.close()


def load(path: str, work_dir: str, width: int = 1280) -> Page:
    """Opens file `path` in headless chromium with JavaScript disabled."""
    profile = os.path.join(work_dir, "chromium-profile")
    process = subprocess.Popen(
        [chromium_path(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--remote-debugging-port=0", f"--user-data-dir={profile}", f"--window-size={width},1000", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        while port is None:
            line = process.stderr.readline()
            match = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if match:
                port = int(match.group(1))
            elif not line and process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start (exit status {process.poll()})")
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        [page] = [t for t in targets if t.get("type") == "page"]
        tools = _DevTools(page["webSocketDebuggerUrl"])
        try:
            tools.call("Network.enable")
            tools.call("Page.enable")
            tools.call("Emulation.setScriptExecutionDisabled", value=True)
            url = "file://" + os.path.abspath(path)
            tools.call("Page.navigate", url=url)
            tools.wait_for("Page.loadEventFired")
            document = tools.call("DOM.getDocument", depth=-1)
            dom = tools.call("DOM.getOuterHTML", nodeId=document["root"]["nodeId"])["outerHTML"]
            shot = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
            requests = [e["params"]["request"]["url"] for e in tools.events
                        if e.get("method") == "Network.requestWillBeSent"]
        finally:
            tools.close()
        return Page(dom=dom, screenshot=base64.b64decode(shot["data"]), requests=requests)
    finally:
        process.kill()
        process.wait()
        process.stderr.close()


def foreign_requests(page: Page, path: str) -> List[str]:
    """Requests other than the page itself: a self-contained page makes none."""
    own = "file://" + os.path.abspath(path)
    return [url for url in page.requests if url != own]
