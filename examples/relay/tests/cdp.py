# SPDX-License-Identifier: MIT
"""A headless Chromium driven over the DevTools protocol, for browser.py:
pages are flat sessions on one WebSocket.  The driver interface (shared with
bidi.py): name, version, open(url), eval(page, expr), screenshot(page, path,
height), problems/notes per page, close()."""
import asyncio
import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time

import websockets


class DevTools:
    """One WebSocket to the browser; pages are flat sessions on it."""

    name = "Chromium"

    def __init__(self, ws):
        self.ws = ws
        self.version = None
        self.next_id = 1
        self.pending = {}
        self.problems = {}   # sessionId -> [text]
        self.notes = {}      # sessionId -> [text] (warnings, for the log)
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self):
        async for raw in self.ws:
            m = json.loads(raw)
            if "id" in m:
                fut = self.pending.pop(m["id"], None)
                if fut and not fut.done():
                    fut.set_result(m)
            else:
                self._event(m)

    def _event(self, m):
        sid, method, p = m.get("sessionId"), m.get("method"), m.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", a.get("type"))))
                            for a in p.get("args", []))
            if p.get("type") in ("error", "assert"):
                self.problems.setdefault(sid, []).append("console." + p["type"] + ": " + text)
            elif p.get("type") == "warning":
                self.notes.setdefault(sid, []).append("console.warn: " + text)
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            text = d.get("exception", {}).get("description") or d.get("text")
            self.problems.setdefault(sid, []).append("exception: " + str(text))
        elif method == "Log.entryAdded":
            e = p.get("entry", {})
            line = f"log {e.get('level')} ({e.get('source')}): {e.get('text')} {e.get('url', '')}"
            if e.get("level") == "error":
                self.problems.setdefault(sid, []).append(line)
            elif e.get("level") == "warning":
                self.notes.setdefault(sid, []).append(line)

    async def send(self, method, params=None, session=None, timeout=30):
        mid = self.next_id
        self.next_id += 1
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        fut = asyncio.get_running_loop().create_future()
        self.pending[mid] = fut
        await self.ws.send(json.dumps(msg))
        m = await asyncio.wait_for(fut, timeout)
        if "error" in m:
            raise RuntimeError(f"{method}: {m['error']}")
        return m.get("result", {})

    async def open(self, url):
        # Each page in a window of its own: a background tab's video is
        # paused by Chromium, and its stream then stops being read.
        t = await self.send("Target.createTarget", {"url": "about:blank", "newWindow": True})
        s = (await self.send("Target.attachToTarget",
                             {"targetId": t["targetId"], "flatten": True}))["sessionId"]
        for dom in ("Runtime.enable", "Log.enable", "Page.enable"):
            await self.send(dom, session=s)
        await self.send("Emulation.setDeviceMetricsOverride",
                        {"width": 1200, "height": 760, "deviceScaleFactor": 1, "mobile": False},
                        session=s)
        await self.send("Page.navigate", {"url": url}, session=s)
        return s

    async def eval(self, session, expr):
        r = await self.send("Runtime.evaluate",
                            {"expression": expr, "returnByValue": True, "awaitPromise": True},
                            session=session)
        if "exceptionDetails" in r:
            raise RuntimeError(f"evaluate {expr!r}: {r['exceptionDetails']}")
        return r["result"].get("value")

    async def screenshot(self, session, path, height, width=1000):
        """The page's top 'height' CSS px, 1200 wide, scaled to 'width' px."""
        r = await self.send("Page.captureScreenshot",
                            {"format": "png", "captureBeyondViewport": True,
                             "clip": {"x": 0, "y": 0, "width": 1200, "height": height,
                                      "scale": width / 1200}}, session=session)
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))

    async def close(self):
        await self.send("Browser.close")


def start_chromium(exe, udd):
    args = [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--mute-audio",
            "--autoplay-policy=no-user-gesture-required", "--window-size=1200,760",
            "--remote-debugging-port=0", "--user-data-dir=" + udd, "about:blank"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(udd, "..", "chromium.log"), "wb"))
    port_file = os.path.join(udd, "DevToolsActivePort")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode}")
        try:
            with open(port_file) as f:
                lines = f.read().split("\n")
            if len(lines) >= 2 and lines[1]:
                return proc, f"ws://127.0.0.1:{int(lines[0])}{lines[1]}"
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("chromium wrote no DevToolsActivePort in 60 s")


@contextlib.asynccontextmanager
async def chromium_devtools(exe, log):
    """A headless Chromium with a fresh profile, and a DevTools client on it;
    on leaving, Chromium is waited for (killed if Browser.close was not sent)
    and its profile removed."""
    work = tempfile.mkdtemp(prefix="relay-browser-chromium.")
    udd = os.path.join(work, "profile")
    os.mkdir(udd)
    proc, wsurl = start_chromium(exe or shutil.which("chromium") or "/usr/bin/chromium", udd)
    log(f"chromium DevTools at {wsurl}")
    try:
        async with websockets.connect(wsurl, max_size=64 << 20, ping_interval=None) as ws:
            dt = DevTools(ws)
            dt.version = (await dt.send("Browser.getVersion"))["product"]
            yield dt
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)
