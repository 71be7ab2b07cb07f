# SPDX-License-Identifier: MIT
"""A headless Firefox driven over WebDriver BiDi (its built-in remote
protocol, no geckodriver), for browser.py: pages are top-level browsing
contexts on one WebSocket session.  The same driver interface as cdp.py:
name, version, open(url), eval(page, expr), screenshot(page, path, height),
problems/notes per page, close()."""
import base64
import contextlib
import json
import math
import os
import shutil

import websockets

from remote import Channel, browser_session, start_browser

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


class BiDi(Channel):
    """One WebDriver BiDi session; a page is a browsing context id
    (problems and notes are kept per context)."""

    name = "Firefox"

    def is_reply(self, m):
        return m.get("type") != "event" and "id" in m

    def on_event(self, m):
        method, p = m.get("method"), m.get("params", {})
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
        m = await self.command({"method": method, "params": params or {}}, timeout)
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

    def read_url(text):  # written once the BiDi server listens
        j = json.loads(text)
        return f"ws://{j['ws_host']}:{int(j['ws_port'])}/session"

    return start_browser("firefox", args, log_path,
                         os.path.join(profile, "WebDriverBiDiServer.json"), read_url)


@contextlib.asynccontextmanager
async def firefox_bidi(exe, log):
    """A headless Firefox with a fresh profile, and a BiDi session on it
    (console and network errors subscribed to); on leaving, Firefox is waited
    for (killed if browser.close was not sent) and its profile removed."""
    exe = exe or shutil.which("firefox-esr") or shutil.which("firefox") or "/usr/bin/firefox-esr"
    async with browser_session("firefox", lambda p, lp: start_firefox(exe, p, lp), log) as ws:
        b = BiDi(ws)
        caps = (await b.send("session.new", {"capabilities": {}}))["capabilities"]
        b.version = f"{caps.get('browserName')} {caps.get('browserVersion')}"
        await b.send("session.subscribe", {"events": [
            "log.entryAdded", "network.responseCompleted", "network.fetchError"]})
        yield b
