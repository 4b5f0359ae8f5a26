"""The one Chromium launch of the browser drivers: headless, a fake microphone playing ``wav`` once, every packet on
127.0.0.1 (no DNS, no mDNS-hidden ICE candidates, no background networking). See browser-testing.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"


def chromium_args(wav: Path | str) -> list[str]:
    """Command-line flags for a headless Chromium whose microphone plays ``wav`` (once) and that stays on loopback."""
    return [
        "--headless=new", "--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}%noloop", "--autoplay-policy=no-user-gesture-required",
        "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--disable-features=WebRtcHideLocalIpsWithMdns",
    ]  # fmt: skip


async def launch_chromium(playwright: Any, wav: Path | str) -> Any:
    """A Playwright ``Browser``: the system Chromium with :func:`chromium_args`."""
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=chromium_args(wav))
