"""Text-only calls from the demo page in Chromium, with no microphone permission, run by test_text_call.py inside a
network namespace of its own.

The demo stack (``open_demo``: local engine with the rules brain and fake speech, both agents, the server and the
page) serves on 127.0.0.1. Chromium runs without the flag that grants media permission, and with permission prompts
denied, so the page never gets a microphone:

1. ``?mic=off`` ("Type only"): Ann types a fact to the Memory Agent's capture persona; the page never asks for the
   microphone, its offer has a receive-only audio section, and the server's sideband runs save_insight and creates
   the reply (the page sends no ``response.create``).
2. Microphone asked for and refused: the page says the microphone is off and the call goes on by typing; Ann asks
   the assistant persona, whose reply (after retrieve_knowledge) carries the fact.
3. No microphone at all (a browser with no capture device): the page says none was found; a typed turn is answered.
4. ``hearAssistant: false`` on the bare client: a data-channel-only offer through the SDP proxy (recorded as seen,
   whatever happens).

Everything the page and the server saw goes to ``OUTDIR/result.json``. Usage: python text_call_driver.py OUTDIR
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from chromium import CHROMIUM, chromium_args

FACT = "Please remember that the quarterly review moves to Thursday at three."
QUESTION = "When is the quarterly review?"

# Counts getUserMedia calls and keeps every SDP offer the page makes.
WATCH = """
window.__gum = 0; window.__offers = [];
const gum = navigator.mediaDevices?.getUserMedia?.bind(navigator.mediaDevices);
if (gum) navigator.mediaDevices.getUserMedia = (c) => { window.__gum += 1; return gum(c); };
const createOffer = RTCPeerConnection.prototype.createOffer;
RTCPeerConnection.prototype.createOffer = async function (...args) {
  const offer = await createOffer.apply(this, args); window.__offers.push(offer.sdp); return offer;
};
"""
# The typed turn is over: the typed message and one final reply after it in the transcript, back to listening.
TURN_DONE = """(text) => {
  const c = window.demo.calls.at(-1);
  if (!c) return false;
  const at = c.transcript.findIndex((e) => e.role === 'user' && e.text === text);
  return at >= 0 && c.transcript.slice(at + 1).some((e) => e.role === 'assistant' && e.final && e.text)
    && c.states.at(-1) === 'listening';
}"""
DATA_CHANNEL_ONLY = """async () => {
  const { RealtimeCall } = await import('/realtime-call.js');
  const call = new RealtimeCall({ persona: 'capture', headers: { Authorization: 'Bearer ann' },
                                  microphone: 'off', hearAssistant: false });
  const events = [], states = [], errors = [];
  call.addEventListener('event', (e) => events.push(e.detail.type));
  call.addEventListener('servererror', (e) => errors.push(e.detail));
  call.addEventListener('statechange', (e) => states.push(e.detail.state));
  let error = null;
  try {
    await call.start();
    call.sendText('Remember that the boiler is serviced in May.');
    const deadline = Date.now() + 20000;
    const done = () => events.includes('response.output_text.done') && states.at(-1) === 'listening';
    while (Date.now() < deadline && !done()) await new Promise((r) => setTimeout(r, 100));
  } catch (err) { error = String(err); }
  const result = { error, errors, events, states, transcript: call.transcript, offer: window.__offers.at(-1) ?? '' };
  await call.stop();
  return result;
}"""


async def main(outdir: Path) -> None:
    from playwright.async_api import async_playwright

    from aoai_realtime.apps.demo.stack import DemoOptions, open_demo

    outdir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240  # setup, before anything runs
    # No "--use-fake-ui-for-media-stream" (it grants the microphone); prompts are denied, as a refusing user does.
    # A (fake) microphone exists, so getUserMedia fails for the refusal, not for want of a device.
    drop = ("--use-fake-ui-for-media-stream", "--use-file-for-fake-audio-capture")
    args = [a for a in chromium_args(outdir / "none.wav") if not a.startswith(drop)]
    args.append("--deny-permission-prompts")
    result: dict[str, Any] = {"steps": []}
    log: list[str] = []
    data = Path(tempfile.mkdtemp(prefix="aoai-text-call-"))
    options = DemoOptions(data_dir=data, port=0, speech="fake", brain="rules", upstream="local")
    async with open_demo(options, say=log.append) as demo, async_playwright() as pw:
        console: list[str] = []

        async def open_page(args: list[str]) -> tuple[Any, Any]:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=args)
            context = await browser.new_context()  # no permissions granted
            await context.add_init_script(WATCH)
            page = await context.new_page()
            page.on("console", lambda msg: console.append(msg.text))
            page.on("pageerror", lambda exc: console.append(f"page error: {exc}"))
            return browser, page

        browser, page = await open_page(args)

        async def typed_call(query: str, text: str, name: str) -> dict[str, Any]:
            await page.goto(f"{demo.url}?{query}")
            await page.wait_for_function("() => window.demo?.ready")
            await page.click("#start")
            step: dict[str, Any] = {"name": name}
            try:
                await page.wait_for_function("() => window.demo.calls.at(-1)?.states.at(-1) === 'listening'",
                                             timeout=30_000)  # fmt: skip
                step["mic_line"] = await page.text_content("#mic")
                step["mic_line_visible"] = await page.is_visible("#mic")
                await page.fill("#text", text)
                await page.click("#send")
                await page.wait_for_function(TURN_DONE, arg=text, timeout=60_000)
                step["completed"] = True
            except Exception as exc:  # keep the evidence, fail in the test
                step |= {"completed": False, "exception": repr(exc)}
            step["call"] = await page.evaluate("() => window.demo.calls.at(-1)")
            step["getUserMedia_calls"] = await page.evaluate("() => window.__gum")
            step["offer"] = await page.evaluate("() => window.__offers.at(-1) ?? ''")
            step["permission"] = await page.evaluate(
                "async () => (await navigator.permissions.query({ name: 'microphone' })).state"
            )
            step["errors"] = await page.evaluate("() => window.demo.errors")
            await page.click("#stop")
            call_id = (step["call"].get("callPath") or "").rsplit("/", 1)[-1]
            if call_id:
                await demo.calls.settled(call_id)
            result["steps"].append(step)
            return step

        await typed_call("user=ann&agent=memory-agent&persona=capture&mic=off", FACT, "type-only")
        await page.wait_for_function(
            "() => (window.demo.memory?.insights ?? []).some((i) => /thursday/i.test(i.text))", timeout=15_000
        )
        result["insights"] = await page.evaluate("() => window.demo.memory.insights")
        await typed_call("user=ann&agent=memory-agent&persona=assistant", QUESTION, "refused")
        await page.screenshot(path=str(outdir / "text-call.png"), full_page=True)
        result["data_channel_only"] = await page.evaluate(DATA_CHANNEL_ONLY)
        await browser.close()
        browser, page = await open_page([a for a in args if a != "--use-fake-device-for-media-stream"])
        await typed_call("user=bob&agent=memory-agent&persona=capture", "Remember that I water the plants on Sundays.",
                         "no-microphone")  # fmt: skip
        await browser.close()
        result["console"] = console[-30:]
    result["log"] = log
    (outdir / "result.json").write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
