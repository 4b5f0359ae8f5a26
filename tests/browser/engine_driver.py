"""Headless Chromium straight against the local engine, from a page on another origin (issue 13 items 1-3),
run by test_engine_browser.py inside a network namespace of its own (``unshare -n``), like e2e_driver.py.

Scenarios:
- ``textchat``: the page opens a call with only a data channel (no microphone: the seed SDK's TextChat), types a
  message and reads the text reply, then hangs up with its own secret. Needs CORS (the page's origin is not
  the engine's) and the data-channel-only call.
- ``voice`` / ``voice-filtered``: the project's own browser client (``realtime-call.js``'s RealtimeCall) talks to
  the engine with a WAV as its microphone, with ``webrtcFilter`` off / on: the state machine must reach speaking
  and come back to listening, with both sides of the turn in the transcript.
- ``text-reply-filtered``: the same, filtered, in a session that answers in text: the reply (no
  ``response.done`` reaches the page) must still bring the state from thinking back to listening.

Writes what the page saw to ``OUTDIR/result.json``. Usage: python engine_driver.py OUTDIR TIMEOUT_S SCENARIO
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from chromium import launch_chromium
from e2e_driver import QUESTION, free_port, serve

ANSWER = "It is sunny and warm today."

PAGE = """<!doctype html><html><body><audio autoplay></audio><script type="module">
import { RealtimeCall } from "/static/realtime-call.js";
const params = new URLSearchParams(location.search);
const engine = params.get("engine"), token = params.get("token"), scenario = params.get("scenario");
const auth = { Authorization: `Bearer ${token}` };
window.result = null;
async function textchat() {
  const pc = new RTCPeerConnection({ iceServers: [] });
  const channel = pc.createDataChannel("oai-events");
  const events = [];
  const done = new Promise((resolve) => channel.addEventListener("message", (e) => {
    const event = JSON.parse(e.data); events.push(event); if (event.type === "response.done") resolve();
  }));
  const opened = new Promise((resolve) => channel.addEventListener("open", resolve));
  await pc.setLocalDescription(await pc.createOffer());
  const offerHasAudio = pc.localDescription.sdp.includes("m=audio");
  const resp = await fetch(`${engine}/v1/realtime/calls`, { method: "POST", body: pc.localDescription.sdp,
    headers: { ...auth, "Content-Type": "application/sdp" } });
  const location = resp.headers.get("Location");
  await pc.setRemoteDescription({ type: "answer", sdp: await resp.text() });
  await opened;
  channel.send(JSON.stringify({ type: "conversation.item.create", item: { type: "message", role: "user",
    content: [{ type: "input_text", text: "What is the weather like?" }] } }));
  channel.send(JSON.stringify({ type: "response.create" }));
  await done;
  const hangup = await fetch(`${engine}${location}/hangup`, { method: "POST", headers: auth });
  pc.close();
  return { offerHasAudio, status: resp.status, location, hangup: hangup.status, events: events.map((e) => e.type),
    session: events.find((e) => e.type === "session.created")?.session ?? null,
    text: events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join("") };
}
async function voice(webrtcFilter, textReply) {
  const states = [], events = [];
  const call = new RealtimeCall({ persona: "engine", callsUrl: `${engine}/v1/realtime/calls`, headers: auth,
    audioElement: document.querySelector("audio"), webrtcFilter,
    audioConstraints: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  call.addEventListener("statechange", (e) => states.push(e.detail.state));
  call.addEventListener("event", (e) => events.push(e.detail.type));
  window.call = call;
  await call.start();
  await new Promise((resolve) => {
    const check = () => {
      const t = call.transcript;
      const heard = t.some((e) => e.role === "user" && e.final && e.text);
      const answered = textReply ? events.includes("response.output_text.done") && states.includes("thinking")
        : t.some((e) => e.role === "assistant" && e.final && e.text) && states.includes("speaking");
      if (heard && answered && states.at(-1) === "listening") resolve();
      else setTimeout(check, 100);
    };
    check();
  });
  const transcript = call.transcript;
  await call.stop();
  return { states, events, transcript };
}
const run = scenario === "textchat" ? textchat()
  : voice(scenario.endsWith("-filtered"), scenario.startsWith("text-reply"));
run.then((r) => { window.result = { ok: true, ...r }; }, (e) => { window.result = { ok: false, error: String(e) }; });
</script></body></html>"""


async def main(outdir: Path, timeout_s: float, scenario: str) -> None:
    from playwright.async_api import async_playwright
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from aoai_realtime.engine import Engine, EngineConfig, ScriptedBrain
    from aoai_realtime.engine.app import create_app
    from aoai_realtime.server import STATIC_DIR
    from aoai_realtime.testing.audio import concat, silence, speak_flite, write_wav
    from aoai_realtime.testing.engine import load_test_speech

    outdir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240  # setup, before anything runs
    wav = outdir / "question.wav"
    write_wav(wav, concat(silence(1000), speak_flite(QUESTION), silence(4000)))
    key = "browser-engine-key"
    engine = Engine(EngineConfig(api_key=key, brain=lambda: ScriptedBrain([], fallback=ANSWER),
                                 speech=load_test_speech("light")))  # fmt: skip
    session: dict[str, Any] = {"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper-1"}}}}
    if scenario.startswith("text-reply"):
        session["output_modalities"] = ["text"]
    token = engine.mint_secret(session, 600).value
    page_app = Starlette(routes=[Route("/", lambda request: HTMLResponse(PAGE)),
                                 Mount("/static", StaticFiles(directory=STATIC_DIR))])  # fmt: skip
    engine_port, page_port = free_port(), free_port()
    running = [await serve(create_app(engine), engine_port), await serve(page_app, page_port)]
    result: dict[str, Any] = {"completed": False}
    try:
        async with async_playwright() as pw:
            browser = await launch_chromium(pw, wav)
            page = await browser.new_page()
            console: list[str] = []
            page.on("console", lambda msg: console.append(msg.text))
            page.on("pageerror", lambda exc: console.append(f"page error: {exc}"))
            engine_url = f"http://127.0.0.1:{engine_port}"
            await page.goto(f"http://127.0.0.1:{page_port}/?engine={engine_url}&token={token}&scenario={scenario}")
            try:
                await page.wait_for_function("window.result !== null", timeout=timeout_s * 1000)
                result["page"] = await page.evaluate("window.result")
                result["completed"] = bool(result["page"].get("ok"))
            except Exception as exc:  # keep the evidence of a run that never finished
                result["exception"] = repr(exc)
            result["console"] = console[-20:]
            await browser.close()
    finally:
        for uv, task in reversed(running):
            uv.should_exit = True
            await task
    (outdir / "result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]))
