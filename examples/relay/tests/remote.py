# SPDX-License-Identifier: MIT
"""What the two browser drivers (cdp.py, bidi.py) share: a JSON command
channel on one WebSocket (numbered commands, their replies, events), and a
headless browser started with a fresh profile that says in a file where its
remote-control port is."""
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time

import websockets


class Channel:
    """Numbered commands on one WebSocket; replies carry the command's id,
    anything else is an event for on_event(message)."""

    def __init__(self, ws):
        self.ws = ws
        self.version = None
        self.next_id = 1
        self.pending = {}
        self.problems = {}   # page -> [text]
        self.notes = {}      # page -> [text] (warnings, for the log)
        self.reader = asyncio.ensure_future(self._read())

    def is_reply(self, m):
        return "id" in m

    def on_event(self, m):
        raise NotImplementedError

    async def _read(self):
        async for raw in self.ws:
            m = json.loads(raw)
            if self.is_reply(m):
                fut = self.pending.pop(m["id"], None)
                if fut and not fut.done():
                    fut.set_result(m)
            else:
                self.on_event(m)

    async def command(self, msg, timeout):
        """Send msg (a dict without its id); the reply."""
        msg["id"] = self.next_id
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[msg["id"]] = fut
        await self.ws.send(json.dumps(msg))
        return await asyncio.wait_for(fut, timeout)


def start_browser(what, args, log_path, port_file, read_url):
    """Start args; read_url(text of port_file) gives the WebSocket URL once
    the browser has written it (None while incomplete)."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(log_path, "wb"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with open(port_file) as f:
                url = read_url(f.read())
            if url:
                return proc, url
        except (FileNotFoundError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{what} wrote no {os.path.basename(port_file)} in 60 s")


@contextlib.asynccontextmanager
async def browser_session(what, start, log):
    """start(profile_dir, log_path) -> (proc, ws_url). Yields the open
    WebSocket; on leaving, the browser is waited for (killed if it was not
    told to close) and its profile removed."""
    work = tempfile.mkdtemp(prefix=f"relay-browser-{what}.")
    profile = os.path.join(work, "profile")
    os.mkdir(profile)
    proc, wsurl = start(profile, os.path.join(work, f"{what}.log"))
    log(f"{what} at {wsurl}")
    try:
        async with websockets.connect(wsurl, max_size=64 << 20, ping_interval=None) as ws:
            yield ws
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)
