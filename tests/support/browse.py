#!/usr/bin/env python3
"""Open a jobfile report in headless Chromium and say what a person would see.

Drives Debian's chromium through its DevTools protocol on a pipe
(--remote-debugging-pipe), with nothing but the standard library: nothing is
downloaded. Prints one JSON object:

  errors      script exceptions, console errors and refused loads
  requests    every URL the page asked for, other than the page itself
  text        the rendered text of the page (innerText)
  ink         pixels of each status colour on the timeline canvas (pale
              green counts as ok)
  timeline_ms performance.now() when the timeline was drawn (from navigation)
  marks       the page's performance marks (script start, data inflated,
              decoded, timeline drawn), in ms from navigation
  loaded_ms   wall time from navigation to the page being ready
  hover       with --hover STATUS: the tooltip after the pointer moved over
              the first bar of that status ({"shown", "text", "bar"})

Usage: browse.py PAGE.html [--hover STATUS] [--screenshot OUT.png] [--width N]
Exit status 2 when the browser cannot be started or the page never gets ready.
"""

import argparse
import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe",
]
READY_LIMIT_S = 60


def fail(msg):
    print(f"browse.py: {msg}", file=sys.stderr)
    sys.exit(2)


class Browser:
    def __init__(self, binary):
        self.profile = tempfile.mkdtemp(prefix="jobfile-chromium-")
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # Out of the way of 3 and 4, which the child gets.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_chrome_r, from_chrome_w)]
        for fd in (to_chrome_r, from_chrome_w):
            os.close(fd)

        def child():
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=child,
        )
        for fd in high:
            os.close(fd)
        self.out = os.fdopen(to_chrome_w, "wb", buffering=0)
        self.inp = os.fdopen(from_chrome_r, "rb", buffering=0)
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.session = None

    def send(self, method, params=None, session=True):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        self.out.write(json.dumps(msg).encode() + b"\0")
        while True:
            m = self.read()
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def read(self):
        while b"\0" not in self.buf:
            chunk = self.inp.read(1 << 16)
            if not chunk:
                fail("chromium closed its pipe (is it installed? /usr/bin/chromium)")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def eval(self, expr):
        r = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"evaluate {expr!r}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def close(self):
        try:
            self.send("Browser.close", session=False)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


INK = """(() => {
  const c = document.getElementById('timeline');
  const out = {};
  if (!c) return out;
  const css = getComputedStyle(document.documentElement);
  const want = {};
  for (const s of ['ok', 'failed', 'timeout', 'crashed', 'skipped', 'cancelled']) {
    const hex = css.getPropertyValue('--' + s).trim();
    want[parseInt(hex.slice(1), 16)] = s;
    out[s] = 0;
  }
  // Pale green is ok too: quick ok records, their worker mostly idle.
  want[parseInt(css.getPropertyValue('--ok-pale').trim().slice(1), 16)] = 'ok';
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 0; i < d.length; i += 4) {
    const s = want[d[i] << 16 | d[i + 1] << 8 | d[i + 2]];
    if (s) out[s]++;
  }
  return out;
})()"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("page")
    ap.add_argument("--hover")
    ap.add_argument("--screenshot")
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "chromium"))
    args = ap.parse_args()
    binary = shutil.which(args.chromium)
    if not binary:
        fail(f"no {args.chromium} on PATH (apt-get install chromium)")
    url = "file://" + os.path.abspath(args.page)
    b = Browser(binary)
    try:
        target = b.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        b.session = b.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)["sessionId"]
        for domain in ("Runtime", "Network", "Log", "Page"):
            b.send(f"{domain}.enable")
        b.send("Emulation.setDeviceMetricsOverride",
               {"width": args.width, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        start = time.monotonic()
        b.send("Page.navigate", {"url": url})
        while not b.eval("!!(window.jobfileReport && window.jobfileReport.ready)"):
            if time.monotonic() - start > READY_LIMIT_S:
                b.events.append({"method": "jobfile.notReady"})
                break
            time.sleep(0.02)
        loaded_ms = (time.monotonic() - start) * 1000
        out = {
            "loaded_ms": round(loaded_ms, 1),
            "timeline_ms": b.eval("window.jobfileReport ? window.jobfileReport.timelineMs : null"),
            "text": b.eval("document.body.innerText"),
            "ink": b.eval(INK),
            "marks": b.eval("Object.fromEntries(performance.getEntriesByType('mark')"
                            ".map((m) => [m.name, Math.round(m.startTime)]))"),
        }
        if args.hover:
            bar = b.eval(f"window.jobfileReport.barAt && window.jobfileReport.barAt({json.dumps(args.hover)})")
            out["hover"] = {"bar": bar, "shown": False, "text": ""}
            if bar:
                b.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": bar["x"], "y": bar["y"]})
                # Let the page handle the event before looking.
                b.eval("new Promise((r) => requestAnimationFrame(() => r(true)))")
                tip = b.eval("(() => { const t = document.getElementById('tooltip');"
                             " return {shown: !t.hidden && t.offsetWidth > 0, text: t.innerText}; })()")
                out["hover"].update(tip)
        if args.screenshot:
            height = b.eval("Math.ceil(document.documentElement.scrollHeight)")
            b.send("Emulation.setDeviceMetricsOverride",
                   {"width": args.width, "height": height, "deviceScaleFactor": 1, "mobile": False})
            b.eval("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))")
            shot = b.send("Page.captureScreenshot", {"format": "png"})
            with open(args.screenshot, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
        # Drain what is still on its way, then sort the events.
        b.eval("1")
        errors, requests = [], []
        for e in b.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                errors.append(d.get("exception", {}).get("description") or d.get("text"))
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                errors.append(p["entry"].get("text"))
            elif m == "Network.requestWillBeSent":
                if p.get("request", {}).get("url") != url:
                    requests.append(p["request"]["url"])
            elif m == "jobfile.notReady":
                errors.append(f"the page was not ready after {READY_LIMIT_S} s")
        out["errors"] = errors
        out["requests"] = requests
        print(json.dumps(out))
    finally:
        b.close()


if __name__ == "__main__":
    main()
