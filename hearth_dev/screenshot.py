"""Screenshot the running demo's dashboard with headless Chromium (for the README).

    python -m hearth_dev.screenshot [--dir .dev] [--out docs/dashboard.png]

Needs a running `scripts/develop` and Debian's chromium. Chromium is driven over the
DevTools protocol: the demo's long-lived token is put where the frontend keeps its login,
so no password is typed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from .home_assistant import HA_URL
from .sensors import REPO

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1280,900",
    "--remote-debugging-port=0",
)


class _Page:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        await self.ws.send_json({"id": call_id, "method": method, "params": params})
        while True:
            message = await self.ws.receive_json()
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]


async def _capture(port: str, token: str, path: str, settle_s: float) -> bytes:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
            target = next(t for t in await response.json() if t["type"] == "page")
        async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            page = _Page(ws)
            await page.call("Page.enable")
            await page.call("Page.navigate", url=f"{HA_URL}/onboarding.html")
            await asyncio.sleep(2)
            tokens = {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": 3600,
                "hassUrl": HA_URL,
                "clientId": f"{HA_URL}/",
                "refresh_token": "",
                "expires": int(time.time() * 1000) + 10 * 365 * 86400 * 1000,
            }
            await page.call(
                "Runtime.evaluate",
                expression=(
                    f"localStorage.setItem('hassTokens', {json.dumps(json.dumps(tokens))})"
                ),
            )
            await page.call("Page.navigate", url=f"{HA_URL}{path}")
            await asyncio.sleep(settle_s)
            shot = await page.call("Page.captureScreenshot", format="png")
    return base64.b64decode(shot["data"])


def _shoot(browser: str, token: str, path: str, settle_s: float) -> bytes:
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert proc.stderr is not None
            ws_url = next(
                line.split(" on ", 1)[1].strip()
                for line in proc.stderr
                if line.startswith("DevTools listening on ")
            )
            port = ws_url.split(":")[2].split("/")[0]
            return asyncio.run(_capture(port, token, path, settle_s))
        finally:
            proc.terminate()
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=REPO / ".dev", help="scripts/develop's --dir")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "dashboard.png")
    parser.add_argument("--path", default="/hearth-demo/hearth", help="the page to capture")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds to let it render")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("error: no chromium on PATH; install it with: apt-get install chromium")
    token_file = args.dir / "ha-token"
    if not token_file.exists():
        raise SystemExit(f"error: no {token_file}; start the demo first with scripts/develop")
    png = _shoot(browser, token_file.read_text().strip(), args.path, args.settle)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(png)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
