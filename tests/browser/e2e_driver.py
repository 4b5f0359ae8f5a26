"""The browser end-to-end run, executed by test_browser_call.py inside a network namespace of its own
(``unshare -n``, only ``lo`` up), so every packet (HTTP, ICE, DTLS, RTP) stays on this namespace's loopback.

Here: the local engine (VAD + whisper, tone voice) and our server on 127.0.0.1, headless Chromium (Debian's,
through Playwright) opening the demo page with a WAV as its microphone. The persona has one server-side tool,
``get_weather``: the question makes the model call it, the server's sideband runs it (the browser never does)
and the answer is spoken from its result. The driver waits for that completed spoken turn, saves a screenshot and
writes what the page saw (and which tool calls the server ran) to ``OUTDIR/result.json``.

With the scenario ``bargein`` the forecast is long, and the WAV says "stop please" five seconds after the
question, while the answer is being spoken: the driver then waits for the interrupted answer and the reply to the
interruption.

Usage: python e2e_driver.py OUTDIR TIMEOUT_S [tool|bargein]
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path
from typing import Any

from chromium import launch_chromium

QUESTION = "What is the weather like today?"
INTERRUPTION = "Stop please."
LONG_FORECAST = (
    "sunny and warm in the morning, with a light breeze from the west that turns into a steady wind after lunch; "
    "clouds gather over the hills in the late afternoon and there is a small chance of a shower before sunset, "
    "then a clear and mild evening with temperatures falling slowly towards the middle of the night"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def serve(app: Any, port: int) -> tuple[Any, asyncio.Task[None]]:
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", proxy_headers=False)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    return server, task


async def main(outdir: Path, scenario: str = "tool") -> None:
    from playwright.async_api import async_playwright

    from aoai_realtime.auth import ApiKey
    from aoai_realtime.endpoints import Endpoint
    from aoai_realtime.engine.app import create_app as engine_app
    from aoai_realtime.engine.engine import Engine, EngineConfig
    from aoai_realtime.engine.factory import brain_factory, speech_for
    from aoai_realtime.server import (
        Persona,
        RealtimeServer,
        ServerSettings,
        ServerTool,
        ToolContext,
        ToolRegistry,
        UpstreamClient,
        User,
        create_app,
    )
    from aoai_realtime.testing.audio import concat, silence, speak_flite, write_wav

    outdir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240  # setup, before anything runs
    wav = outdir / "question.wav"
    # 1 s of leading silence: the fake capture starts at getUserMedia, before the call connects (pitfall 6).
    if scenario == "bargein":  # the interruption lands about 4 s into a 12 s answer
        write_wav(wav, concat(silence(1000), speak_flite(QUESTION), silence(5000), speak_flite(INTERRUPTION),
                              silence(5000)))  # fmt: skip
    else:
        write_wav(wav, concat(silence(1000), speak_flite(QUESTION), silence(4000)))

    engine_key = "e2e-engine-key"
    engine = Engine(EngineConfig(api_key=engine_key, brain=brain_factory("rules"), speech=speech_for("light")))
    engine_port, server_port = free_port(), free_port()
    user = User(id="e2e", name="Tess", role="tester", personas=frozenset({"assistant"}))
    server_tool_calls: list[dict[str, Any]] = []

    async def get_weather(arguments: dict[str, Any], context: ToolContext) -> dict[str, str]:
        forecast = LONG_FORECAST if scenario == "bargein" else "sunny and warm"
        server_tool_calls.append(
            {"arguments": arguments, "user": context.user_id, "persona": context.persona_id, "forecast": forecast}
        )
        return {"forecast": forecast}

    weather = ServerTool(
        name="get_weather",
        description="Mandatory for every question about the weather: get today's forecast.",
        parameters={"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
        handler=get_weather,
    )
    server = RealtimeServer(
        settings=ServerSettings(),
        upstream=UpstreamClient(Endpoint.local(f"http://127.0.0.1:{engine_port}/v1"), ApiKey(engine_key)),
        auth=lambda request: user,
        personas=[Persona(id="assistant", title="Assistant", instructions="You help {user_name}. Be brief.",
                          tools=("get_weather",))],
        tools=ToolRegistry([weather]),
    )
    running = [await serve(engine_app(engine), engine_port), await serve(create_app(server), server_port)]
    result: dict[str, Any] = {}
    try:
        async with async_playwright() as pw:
            browser = await launch_chromium(pw, wav)
            page = await browser.new_page(viewport={"width": 1200, "height": 800})
            console: list[str] = []
            page.on("console", lambda msg: console.append(msg.text))
            page.on("pageerror", lambda exc: console.append(f"page error: {exc}"))
            page.on("requestfailed", lambda req: console.append(f"request failed: {req.url} {req.failure}"))
            await page.goto(f"http://127.0.0.1:{server_port}/?persona=assistant&raw=1")
            try:
                await page.wait_for_function("document.querySelector('#persona').options.length > 0")
            except Exception as exc:  # the page never got ready: keep the evidence, then fail
                result |= {"completed": False, "stage": "personas", "exception": repr(exc), "console": console,
                           "errors": await page.evaluate("() => window.demo?.errors ?? null")}  # fmt: skip
                await page.screenshot(path=str(outdir / "browser-call.png"), full_page=True)
                (outdir / "result.json").write_text(json.dumps(result, indent=2))
                raise
            await page.click("#start")
            # A completed spoken turn: the user's words transcribed, the assistant heard (speaking ended at
            # output_audio_buffer.stopped), back to listening.
            done_turn = """() => {
                    const d = window.demo;
                    const t = d.transcript;
                    return t.some((e) => e.role === 'user' && e.final && e.text)
                        && t.some((e) => e.role === 'assistant' && e.final && e.text)
                        && d.states.includes('speaking') && d.states.at(-1) === 'listening'
                        && d.latencies.length > 0;
                }"""
            # Barge-in: the answer cut short, the user's interruption heard, and an answer to it after the cut.
            done_bargein = """() => {
                    const d = window.demo;
                    const t = d.transcript;
                    const cut = t.findIndex((e) => e.role === 'assistant' && e.interrupted);
                    return cut >= 0 && t.slice(cut).some((e) => e.role === 'user' && e.final && e.text)
                        && t.slice(cut + 1).some((e) => e.role === 'assistant' && e.final && e.text)
                        && d.states.at(-1) === 'listening';
                }"""
            waited = page.wait_for_function(
                done_bargein if scenario == "bargein" else done_turn,
                timeout=float(sys.argv[2]) * 1000 if len(sys.argv) > 2 else 90_000,
            )
            try:
                await waited
                result["completed"] = True
            except Exception:  # a failed run still leaves its evidence: state, console, screenshot
                result["completed"] = False
            result |= await page.evaluate(
                "() => ({states: demo.states, transcript: demo.transcript, latencies: demo.latencies,"
                " errors: demo.errors, tools: demo.tools})"
            )
            await page.screenshot(path=str(outdir / "browser-call.png"), full_page=True)
            result["console"] = console[-20:]
            result["server_tool_calls"] = server_tool_calls
            (outdir / "result.json").write_text(json.dumps(result, indent=2))
            if await page.is_enabled("#stop"):
                await page.click("#stop")
            await browser.close()
    finally:
        for uv, task in reversed(running):
            uv.should_exit = True
            await task
    (outdir / "result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[3] if len(sys.argv) > 3 else "tool"))
