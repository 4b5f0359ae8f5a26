"""The demo page end to end in Chromium, run by test_agents_browser.py inside a network namespace of its own.

The demo stack (``open_demo``: local engine with the rules brain and light speech, both agents, the server and the
page) serves on 127.0.0.1; Chromium opens the page with a WAV as its microphone (one browser per call, since the
fake microphone is fixed at launch):

1. Memory Agent, persona capture, as Ann: she states a fact; the server's sideband runs save_insight.
2. Memory Agent, persona assistant, a new call: she asks; the answer carries the fact. Screenshot demo-memory.png.
3. Visit Agent as Bob: a short visit; after the call, as the reviewer, the page opens the visit's review thread
   and marks it reviewed with notes. Screenshot demo-visit.png.
4. The ``useVoiceAssistant`` hook on a tiny page with a minimal React-compatible hooks runtime (useState,
   useEffect, useRef, useCallback; no React package is installed here): start, a typed turn, unmount, and the
   server sees the call hung up.

Everything the page and the server saw goes to ``OUTDIR/result.json``. Usage: python agents_driver.py OUTDIR
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from chromium import launch_chromium

FACT = "Please remember that the quarterly review moves to Thursday at three."
QUESTION = "When is the quarterly review?"
VISIT = (  # the subject's side of a whole visit, one line per question, spoken with a pause for each answer
    "Hello, I am ready for the visit.",
    "I have been feeling a bit tired, but better every day.",
    "About a three.",
    "Yes.",
    "I sleep about seven hours, better than last week.",
    "Please move my check-up appointment to next Tuesday.",
    "No, that is everything from me, thank you.",
)
NOTES = "Called back; all fine."

HOOK_PAGE = """<!doctype html><meta charset="utf-8"><title>useVoiceAssistant</title>
<p>state: <b id="state">idle</b></p><ol id="transcript"></ol><audio id="remote" autoplay></audio>
<script type="module">
// A minimal React-compatible hooks runtime for one component (no React package here): state setters re-render,
// effects run after render when their deps change, and unmount runs every effect's cleanup.
const React = (() => {
  const slots = []; let index = 0; let render = () => {}; let pending = [];
  const same = (a, b) => a && b && a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
  return {
    useState(initial) {
      const k = index++;
      if (!(k in slots)) slots[k] = initial;
      const set = (v) => { slots[k] = typeof v === "function" ? v(slots[k]) : v; queueMicrotask(() => render()); };
      return [slots[k], set];
    },
    useRef(initial) { const k = index++; if (!(k in slots)) slots[k] = { current: initial }; return slots[k]; },
    useCallback(fn, deps) {
      const k = index++;
      if (!slots[k] || !same(slots[k].deps, deps)) slots[k] = { fn, deps };
      return slots[k].fn;
    },
    useEffect(fn, deps) {
      const k = index++; const prev = slots[k];
      if (prev && same(prev.deps, deps)) return;
      slots[k] = { deps, cleanup: null, effect: true };
      pending.push(() => { prev?.cleanup?.(); slots[k].cleanup = fn() ?? null; });
    },
    mount(Component, show) {
      render = () => { index = 0; show(Component()); const run = pending; pending = []; run.forEach((f) => f()); };
      render();
      return () => { render = () => {}; for (const s of slots) if (s?.effect) s.cleanup?.(); };
    },
  };
})();
import { makeUseVoiceAssistant } from "/use-voice-assistant.js";
const useVoiceAssistant = makeUseVoiceAssistant(React);
window.hookStates = [];
function App() {
  return useVoiceAssistant({ persona: "capture", headers: { Authorization: "Bearer ann" },
    audioElement: document.getElementById("remote"),
    audioConstraints: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
}
window.unmount = React.mount(App, (hook) => {
  window.hook = hook;
  if (window.hookStates.at(-1) !== hook.state) window.hookStates.push(hook.state);
  document.getElementById("state").textContent = hook.state;
  document.getElementById("transcript").replaceChildren(...hook.transcript.map((e) => {
    const li = document.createElement("li"); li.textContent = `${e.role}: ${e.text}`; return li; }));
});
</script>"""

# A one-turn call is over in the page: the user's words transcribed, the assistant's reply final, back to listening.
TURN_DONE = """() => {
  const c = window.demo.calls.at(-1);
  return !!c && c.transcript.some((e) => e.role === 'user' && e.final && e.text)
    && c.transcript.some((e) => e.role === 'assistant' && e.final && e.text) && c.states.at(-1) === 'listening';
}"""
# A visit is over: the server ran end_visit, and the goodbye was spoken (back to listening after it).
VISIT_DONE = """() => {
  const c = window.demo.calls.at(-1);
  return !!c && c.tools.some((t) => t.name === 'end_visit' && t.output) && c.states.at(-1) === 'listening'
    && c.states.lastIndexOf('speaking') > c.states.indexOf('listening');
}"""


async def main(outdir: Path) -> None:
    from playwright.async_api import async_playwright

    from aoai_realtime.apps.demo.stack import DemoOptions, open_demo
    from aoai_realtime.testing.audio import concat, silence, speak_flite, write_wav

    outdir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240  # setup, before anything runs
    wavs = {
        "capture": concat(silence(1000), speak_flite(FACT), silence(3000)),
        "assistant": concat(silence(1000), speak_flite(QUESTION), silence(3000)),
        "visit": concat(silence(1000), *(concat(speak_flite(line), silence(9000)) for line in VISIT)),
    }
    for name, pcm in wavs.items():
        write_wav(outdir / f"{name}.wav", pcm)
    result: dict[str, Any] = {"steps": []}
    log: list[str] = []
    data = Path(tempfile.mkdtemp(prefix="aoai-demo-e2e-"))
    options = DemoOptions(data_dir=data, port=0, speech="light", brain="rules", upstream="local")
    async with open_demo(options, say=log.append) as demo, async_playwright() as pw:
        base = demo.url

        async def page_for(wav: str) -> tuple[Any, Any, list[str]]:
            browser = await launch_chromium(pw, outdir / f"{wav}.wav")
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            console: list[str] = []
            page.on("console", lambda msg: console.append(msg.text))
            page.on("pageerror", lambda exc: console.append(f"page error: {exc}"))
            return browser, page, console

        async def one_call(page: Any, query: str, done: str, name: str, timeout_s: float = 90) -> dict[str, Any]:
            await page.goto(f"{base}?{query}&raw=1")
            await page.wait_for_function("() => window.demo?.ready")
            await page.click("#start")
            step: dict[str, Any] = {"name": name}
            try:
                await page.wait_for_function(done, timeout=timeout_s * 1000)
                step["completed"] = True
            except Exception as exc:  # keep the evidence, fail in the test
                step |= {"completed": False, "exception": repr(exc)}
            step["call"] = await page.evaluate("() => window.demo.calls.at(-1)")
            await page.click("#stop")
            call_id = (step["call"].get("callPath") or "").rsplit("/", 1)[-1]
            if call_id:
                await demo.calls.settled(call_id)
            result["steps"].append(step)
            return step

        # 1. Memory Agent, capture
        browser, page, console = await page_for("capture")
        await one_call(page, "user=ann&agent=memory-agent&persona=capture", TURN_DONE, "capture")
        await page.wait_for_function(
            "() => (window.demo.memory?.insights ?? []).some((i) => /thursday/i.test(i.text))", timeout=15_000
        )
        result["insights"] = await page.evaluate("() => window.demo.memory.insights")
        await browser.close()

        # 2. Memory Agent, assistant: a new call
        browser, page, console = await page_for("assistant")
        await one_call(page, "user=ann&agent=memory-agent&persona=assistant", TURN_DONE, "assistant")
        await page.wait_for_function("() => (window.demo.memory?.sessions ?? []).length >= 2", timeout=15_000)
        result["sessions"] = await page.evaluate("() => window.demo.memory.sessions")
        await page.screenshot(path=str(outdir / "demo-memory.png"), full_page=True)
        result["console_memory"] = console[-20:]
        await browser.close()

        # 3. Visit Agent, then the reviewer marks the thread reviewed in the page
        browser, page, console = await page_for("visit")
        visit = await one_call(page, "user=bob&agent=visit-agent&persona=visit", VISIT_DONE, "visit", timeout_s=150)
        call_id = (visit["call"].get("callPath") or "").rsplit("/", 1)[-1]
        await page.select_option("#user", "rivera")
        selector = f"#threads li[data-thread='{call_id}']"
        await page.wait_for_selector(selector, timeout=15_000)
        await page.click(selector)
        await page.wait_for_function("(id) => window.demo.thread?.thread_id === id", arg=call_id)
        await page.fill("#review-notes", NOTES)
        await page.click("#mark-reviewed")
        await page.wait_for_function("() => window.demo.thread?.status === 'reviewed'", timeout=15_000)
        await page.wait_for_selector(f"{selector} .badge.reviewed", timeout=15_000)
        result["thread"] = await page.evaluate("() => window.demo.thread")
        result["server_thread"] = await demo.visit.thread(call_id)
        await page.screenshot(path=str(outdir / "demo-visit.png"), full_page=True)
        result["errors"] = await page.evaluate("() => window.demo.errors")
        result["console_visit"] = console[-20:]

        # 4. useVoiceAssistant: start, a typed turn, unmount hangs up
        await page.route(f"{base}hook-test.html", lambda route: route.fulfill(body=HOOK_PAGE, content_type="text/html"))
        await page.goto(f"{base}hook-test.html")
        await page.evaluate("() => window.hook.start()")
        await page.wait_for_function("() => window.hookStates.includes('listening')", timeout=30_000)
        live = list(demo.server.calls)
        await page.evaluate("() => window.hook.sendText('Hello there.')")
        await page.wait_for_function(  # the reply spoken to its end: back to listening after speaking
            "() => window.hookStates.includes('speaking') && window.hookStates.at(-1) === 'listening'", timeout=30_000
        )
        hook = await page.evaluate("() => ({states: window.hookStates, transcript: window.hook.transcript})")
        await page.evaluate("() => window.unmount()")
        for call_id in live:
            await demo.calls.settled(call_id, timeout=15)  # the unmount's cleanup hung it up on the server
        result["hook"] = hook | {"live_calls_during": len(live), "live_calls_after_unmount": len(demo.server.calls)}
        await browser.close()
    result["log"] = log
    (outdir / "result.json").write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
