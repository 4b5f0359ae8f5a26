// The demo page: state, transcript (revealed in step with the voice), tool activity and per-turn latency.
// Query parameters: ?persona=<id> preselects a persona; ?raw=1 turns off the browser's microphone
// processing (echo cancellation, noise suppression, gain control), which garbles synthetic test speech.
import { RealtimeCall } from "./realtime-call.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const raw = params.get("raw") === "1";
// Read by tests and handy in the console.
const demo = (window.demo = { call: null, states: [], latencies: [], tools: [], errors: [], transcript: [] });

async function loadPersonas() {
  const resp = await fetch("/api/realtime/personas", { credentials: "same-origin" });
  if (!resp.ok) throw new Error(`could not list personas (${resp.status})`);
  const { personas } = await resp.json();
  const select = $("persona");
  for (const p of personas) select.add(new Option(p.title, p.id));
  if (params.get("persona")) select.value = params.get("persona");
}

function showState(state) {
  const badge = $("state");
  badge.textContent = state;
  badge.dataset.state = state;
  demo.states.push(state);
  $("history").textContent = demo.states.join(" → ");
  const live = !["idle", "error"].includes(state);
  $("start").disabled = live;
  $("stop").disabled = !live;
  $("interrupt").disabled = state !== "speaking";
}

function showTranscript(entries) {
  demo.transcript = entries;
  const list = $("transcript");
  list.replaceChildren(...entries.map((e) => {
    const li = document.createElement("li");
    li.className = `${e.role}${e.interrupted ? " interrupted" : ""}`;
    li.textContent = e.text;
    li.dataset.final = String(e.final);
    return li;
  }));
}

function showError(message) {
  demo.errors.push(message);
  $("error").textContent = message;
  $("error").hidden = false;
}

$("start").addEventListener("click", async () => {
  $("error").hidden = true;
  const call = new RealtimeCall({
    persona: $("persona").value,
    audioElement: $("remote"),
    audioConstraints: raw ? { echoCancellation: false, noiseSuppression: false, autoGainControl: false } : {},
  });
  demo.call = call;
  call.addEventListener("statechange", (e) => showState(e.detail.state));
  call.addEventListener("transcript", (e) => showTranscript(e.detail.entries));
  call.addEventListener("latency", (e) => {
    const { turn, speechStoppedToResponseMs: r, speechStoppedToAudioMs: a } = e.detail;
    demo.latencies.push(e.detail);
    $("latency").tBodies[0].insertAdjacentHTML(
      "beforeend", `<tr><td>${turn}</td><td>${r === null ? "–" : Math.round(r) + " ms"}</td><td>${Math.round(a)} ms</td></tr>`);
  });
  call.addEventListener("tool", (e) => {
    demo.tools.push(e.detail);
    const li = document.createElement("li");
    li.textContent = e.detail.phase === "called"
      ? `→ ${e.detail.name}(${e.detail.arguments})` : `← ${e.detail.output}`;
    $("tools").append(li);
  });
  call.addEventListener("error", (e) => showError(e.detail.error.message));
  call.addEventListener("servererror", (e) => showError(`server: ${e.detail.message ?? e.detail.code}`));
  try {
    await call.start();
  } catch (err) {
    showError(err.message);
  }
});

$("stop").addEventListener("click", () => demo.call?.stop());
$("interrupt").addEventListener("click", () => demo.call?.interrupt());

loadPersonas().catch((err) => showError(err.message));
