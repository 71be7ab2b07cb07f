# SPDX-License-Identifier: MIT
"""A headless Firefox driven over WebDriver BiDi (its built-in remote
protocol, no geckodriver), for browser.py: pages are top-level browsing
contexts on one WebSocket session.  The same driver interface as cdp.py:
name, version, open(url), eval(page, expr), screenshot(page, path, height),
problems/notes per page, close()."""
import asyncio
import base64
import contextlib
import json
import math
import os
import shutil
import subprocess
import tempfile
import time

import websockets

_NUMBERS = {"NaN": math.nan, "-0": -0.0, "Infinity": math.inf, "-Infinity": -math.inf}


def value(rv):
    """A BiDi RemoteValue as the Python value CDP's returnByValue would give."""
    t, v = rv.get("type"), rv.get("value")
    if t in ("undefined", "null"):
        return None
    if t == "number":
        return _NUMBERS.get(v, v) if isinstance(v, str) else v
    if t == "bigint":
        return int(v)
    if t in ("array", "set"):
        return [value(x) for x in v or []]
    if t in ("object", "map"):
        return {(k if isinstance(k, str) else str(value(k))): value(x) for k, x in v or []}
    if t in ("string", "boolean"):
        return v
    return {"type": t}  # a node, window, function...: not data


class BiDi:
    """One WebDriver BiDi session; a page is a browsing context id."""

    name = "Firefox"

    def __init__(self, ws):
        self.ws = ws
        self.version = None
        self.next_id = 1
        self.pending = {}
        self.problems = {}   # context -> [text]
        self.notes = {}      # context -> [text] (warnings, for the log)
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self):
        async for raw in self.ws:
            m = json.loads(raw)
            if m.get("type") == "event":
                self._event(m["method"], m.get("params", {}))
            elif "id" in m:
                fut = self.pending.pop(m["id"], None)
                if fut and not fut.done():
                    fut.set_result(m)

    def _event(self, method, p):
        if method == "log.entryAdded":
            ctx = p.get("source", {}).get("context")
            if p.get("type") == "javascript" and p.get("stackTrace", {}).get("callFrames"):
                line = "exception: " + str(p.get("text"))
            elif p.get("type") == "javascript":
                # (what the loader says, e.g. a file refused for its MIME type: no stack)
                line = "log error (javascript): " + str(p.get("text"))
            elif p.get("type") == "console":
                line = f"console.{p.get('method')}: {p.get('text')}"
            else:
                line = f"log {p.get('type')}: {p.get('text')}"
            if p.get("level") == "error":
                self.problems.setdefault(ctx, []).append(line)
            elif p.get("level") == "warn":
                self.notes.setdefault(ctx, []).append(line)
        # What Chromium's Log domain reports as network errors: failed loads.
        elif method == "network.responseCompleted":
            st = p.get("response", {}).get("status", 0)
            if st >= 400:
                self.problems.setdefault(p.get("context"), []).append(
                    f"log error (network): HTTP {st} {p.get('request', {}).get('url')}")
        elif method == "network.fetchError":
            self.problems.setdefault(p.get("context"), []).append(
                f"log error (network): {p.get('errorText')} {p.get('request', {}).get('url')}")

    async def send(self, method, params=None, timeout=30):
        mid = self.next_id
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[mid] = fut
        await self.ws.send(json.dumps({"id": mid, "method": method, "params": params or {}}))
        m = await asyncio.wait_for(fut, timeout)
        if m.get("type") == "error":
            raise RuntimeError(f"{method}: {m.get('error')}: {m.get('message')}")
        return m.get("result", {})

    async def open(self, url):
        # A window of its own for each page, as with Chromium: Firefox too
        # may suspend the video of a background tab (media.suspend-bkgnd-video).
        ctx = (await self.send("browsingContext.create", {"type": "window"}))["context"]
        await self.send("browsingContext.setViewport",
                        {"context": ctx, "viewport": {"width": 1200, "height": 760},
                         "devicePixelRatio": 1})
        await self.send("browsingContext.navigate", {"context": ctx, "url": url, "wait": "none"})
        return ctx

    async def eval(self, ctx, expr):
        r = await self.send("script.evaluate",
                            {"expression": expr, "target": {"context": ctx},
                             "awaitPromise": True, "resultOwnership": "none"})
        if r.get("type") == "exception":
            raise RuntimeError(f"evaluate {expr!r}: {r.get('exceptionDetails')}")
        return value(r["result"])

    async def screenshot(self, ctx, path, height, width=None):
        """The page's top 'height' CSS px, 1200 wide (BiDi does not scale)."""
        r = await self.send("browsingContext.captureScreenshot",
                            {"context": ctx, "origin": "document",
                             "format": {"type": "image/png"},
                             "clip": {"type": "box", "x": 0, "y": 0, "width": 1200,
                                      "height": height}})
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))

    async def close(self):
        try:
            await self.send("browser.close", timeout=10)
        except websockets.ConnectionClosed:
            pass  # (it may close before answering)


def start_firefox(exe, profile, log_path):
    args = [exe, "--headless", "--remote-debugging-port=0", "--profile", profile, "--no-remote"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(log_path, "wb"))
    # Written once the BiDi server listens (its port, for --remote-debugging-port=0).
    port_file = os.path.join(profile, "WebDriverBiDiServer.json")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"firefox exited with {proc.returncode}")
        try:
            with open(port_file) as f:
                j = json.load(f)
            return proc, f"ws://{j['ws_host']}:{int(j['ws_port'])}/session"
        except (FileNotFoundError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("firefox wrote no WebDriverBiDiServer.json in 60 s")


@contextlib.asynccontextmanager
async def firefox_bidi(exe, log):
    """A headless Firefox with a fresh profile, and a BiDi session on it
    (console and network errors subscribed to); on leaving, Firefox is waited
    for (killed if browser.close was not sent) and its profile removed."""
    work = tempfile.mkdtemp(prefix="relay-browser-firefox.")
    profile = os.path.join(work, "profile")
    os.mkdir(profile)
    exe = exe or shutil.which("firefox-esr") or shutil.which("firefox") or "/usr/bin/firefox-esr"
    proc, wsurl = start_firefox(exe, profile, os.path.join(work, "firefox.log"))
    log(f"firefox WebDriver BiDi at {wsurl}")
    try:
        async with websockets.connect(wsurl, max_size=64 << 20, ping_interval=None) as ws:
            b = BiDi(ws)
            caps = (await b.send("session.new", {"capabilities": {}}))["capabilities"]
            b.version = f"{caps.get('browserName')} {caps.get('browserVersion')}"
            await b.send("session.subscribe", {"events": [
                "log.entryAdded", "network.responseCompleted", "network.fetchError"]})
            yield b
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)
