// The demo page of `aoai-realtime demo`: pick a user and an agent, talk or type, watch the state, the transcript
// (revealed in step with the voice), tool activity and per-turn latency, and browse what the agents kept: the
// Memory Agent's insights, graph and past sessions, the Visit Agent's review threads (open one, mark it reviewed).
// Query parameters: ?user=<id>&agent=<name>&persona=<id> preselect; ?mic=off ticks "Type only" (no microphone);
// ?raw=1 turns off the browser's microphone processing (it garbles synthetic test speech).
// A person with no microphone, or who refuses it, still calls: the call goes on by typing, and the page says so.
// Typed text goes to the call as a message only; the server's one response arbiter creates the reply.
import { RealtimeCall } from "./realtime-call.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const raw = params.get("raw") === "1";
const MIC_LINES = {
  on: "Microphone on: speak, or type below.",
  off: "Microphone off (type only): type your turns below; the agent answers aloud and in the transcript.",
  refused: "Microphone off: access to it was refused (allow the microphone for this page to speak). "
    + "Type your turns below.",
  none: "Microphone off: no microphone was found. Type your turns below.",
};
// Read by tests and handy in the console: one entry per call, the current one last.
const demo = (window.demo = { info: null, calls: [], errors: [], ready: false, refreshes: 0 });
let info = null, agent = null, call = null, current = null, openThread = null;

const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
};
const user = () => $("user").value;
const auth = () => ({ Authorization: `Bearer ${user()}` });
const when = (t) => (t ? new Date(t * 1000).toLocaleString() : "");

async function api(path, options = {}) {
  const resp = await fetch(`/api/demo${path}`, { ...options, headers: { ...auth(), ...(options.headers ?? {}) } });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(body?.error?.message ?? `the server answered ${resp.status}`);
  return body;
}

function showError(message) {
  demo.errors.push(message);
  $("error").textContent = message;
  $("error").hidden = false;
}

// -- choosing ------------------------------------------------------------------------------------------------

function me() { return info.users.find((u) => u.id === user()); }

function pickAgent(name) {
  agent = info.agents.find((a) => a.name === name) ?? info.agents[0];
  for (const b of $("agents").children) b.classList.toggle("active", b.dataset.agent === agent.name);
  $("persona").replaceChildren(...agent.personas.map((p) => new Option(p.title, p.id)));
  if (params.get("persona") && agent.personas.some((p) => p.id === params.get("persona"))) {
    $("persona").value = params.get("persona");
  }
  $("memory-panel").hidden = agent.name !== "memory-agent";
  $("visit-panel").hidden = agent.name !== "visit-agent";
  showPersonaHint();
  refresh();
}

function showPersonaHint() {
  const hints = {
    capture: "Capture: tell it what to remember; it saves insights (save_insight).",
    assistant: "Assistant: ask about what you told it before; it looks it up (retrieve_knowledge).",
    visit: `Visit: a structured interview — "${info.script.title}", ${info.script.questions.length} questions.`,
  };
  const canCall = me()?.personas.includes($("persona").value);
  $("persona-hint").textContent = canCall ? (hints[$("persona").value] ?? "")
    : `${me()?.name} reviews visits and places no calls: pick Ann or Bob to talk.`;
  if (!current || ["idle", "error"].includes(call?.state ?? "idle")) $("start").disabled = !canCall;
}

// -- the call ------------------------------------------------------------------------------------------------

function showState(state) {
  $("state").textContent = state;
  $("state").dataset.state = state;
  current.states.push(state);
  const live = !["idle", "error"].includes(state);
  $("start").disabled = live || !me()?.personas.includes($("persona").value);
  $("stop").disabled = !live;
  for (const id of ["text", "send"]) $(id).disabled = !live || state === "connecting";
  for (const id of ["user", "persona", "type-only"]) $(id).disabled = live;
  if (!live) setTimeout(refresh, 500);  // post-call work has started: show what it writes
}

function showMicrophone({ on, reason }) {
  current.microphone = { on, reason };
  $("mic").textContent = MIC_LINES[reason ?? "on"] ?? MIC_LINES.none;
  $("mic").dataset.on = String(on);
  $("mic").hidden = false;
  if (!on) $("text").focus();
}

function showTranscript(entries) {
  current.transcript = entries;
  const items = entries.map((e) => el("li", { className: `${e.role}${e.interrupted ? " interrupted" : ""}`,
                                             textContent: e.text }));
  $("transcript").replaceChildren(...(items.length ? items : [el("li", { className: "empty", textContent: "…" })]));
  $("transcript").scrollTop = $("transcript").scrollHeight;
}

function short(text, width = 90) {
  const flat = String(text ?? "").replace(/\s+/g, " ");
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat;
}

function showTool(detail) {
  if (detail.phase === "called") {
    const row = { call_id: detail.call_id, name: detail.name, arguments: detail.arguments, output: null };
    current.tools.push(row);
    $("tools").append(el("li", { id: `tool-${detail.call_id}` }, el("span", { className: "name", textContent: detail.name }),
                         ` ${short(detail.arguments, 60)} → `, el("span", { className: "out muted", textContent: "running…" })));
    return;
  }
  const row = current.tools.find((t) => t.call_id === detail.call_id);
  if (row) row.output = detail.output;
  const out = document.querySelector(`#tool-${CSS.escape(detail.call_id)} .out`);
  if (out) {
    const failed = /"error"\s*:/.test(detail.output ?? "");
    out.className = `out${failed ? " err" : ""}`;
    out.textContent = short(detail.output);
  }
}

function showLatency(turn, from, ms) {
  current.latencies.push({ turn, from, ms });
  $("latency").tBodies[0].append(el("tr", {}, el("td", { textContent: turn }), el("td", { textContent: from }),
                                   el("td", { textContent: `${Math.round(ms)} ms` })));
}

async function startCall() {
  $("error").hidden = true;
  for (const id of ["tools"]) $(id).replaceChildren();
  $("latency").tBodies[0].replaceChildren();
  current = { persona: $("persona").value, user: user(), states: [], transcript: [], tools: [], latencies: [],
              callPath: null, microphone: null, typed: [] };
  demo.calls.push(current);
  $("mic").hidden = true;
  call = new RealtimeCall({
    persona: current.persona, headers: auth(), audioElement: $("remote"),
    microphone: $("type-only").checked ? "off" : "auto",
    audioConstraints: raw ? { echoCancellation: false, noiseSuppression: false, autoGainControl: false } : {},
  });
  call.addEventListener("microphone", (e) => showMicrophone(e.detail));
  let typedAt = null, turns = 0;
  call.addEventListener("statechange", (e) => showState(e.detail.state));
  call.addEventListener("transcript", (e) => showTranscript(e.detail.entries));
  call.addEventListener("tool", (e) => showTool(e.detail));
  call.addEventListener("latency", (e) => { typedAt = null; showLatency(++turns, "end of speech", e.detail.speechStoppedToAudioMs); });
  call.on("output_audio_buffer.started", () => {
    if (typedAt !== null) { showLatency(++turns, "text sent", performance.now() - typedAt); typedAt = null; }
  });
  call.addEventListener("error", (e) => showError(e.detail.error.message));
  call.addEventListener("servererror", (e) => showError(`server: ${e.detail.message ?? e.detail.code}`));
  $("typed").onsubmit = (e) => {
    e.preventDefault();
    const text = $("text").value.trim();
    if (!text) return;
    typedAt = performance.now();
    call.sendText(text);  // the message only: the server's response arbiter answers it (never over a reply)
    current.typed.push(text);
    $("text").value = "";
  };
  try {
    await call.start();
    current.callPath = call.callPath;
  } catch (err) {
    showError(err.message);
  }
}

// -- browsing ------------------------------------------------------------------------------------------------

function list(items, render, empty) {
  return items.length ? el("ul", {}, ...items.map((i) => el("li", {}, ...[render(i)].flat())))
    : el("p", { className: "muted", textContent: empty });
}

async function refreshMemory() {
  for (const n of document.querySelectorAll("#memory-panel .who")) n.textContent = me()?.name ?? "";
  const [{ insights }, graph, { sessions }] = await Promise.all([
    api("/memory/insights"), api("/memory/graph"), api("/memory/sessions")]);
  demo.memory = { insights, graph, sessions };
  $("insights").replaceChildren(list(insights, (i) => [i.text, el("span", { className: "chip", textContent: when(i.saved_at) })],
                                     "Nothing saved yet: call Capture and say what to remember."));
  $("graph").replaceChildren(
    el("p", { className: "hint", textContent: `Entities and relations extracted after each call (${graph.extractor ?? ""}).` }),
    el("div", {}, ...(graph.entities ?? []).map((e) => el("span", { className: "chip", textContent: `${e.name} · ${e.type}` }))),
    list(graph.relations ?? [], (r) => `${r.source} —${r.relation}→ ${r.target}`, "No relations yet."));
  $("sessions").replaceChildren(list(sessions, (s) => [
    el("b", { textContent: `${s.persona} · ${when(s.started_at)} · ${s.turns} turns` }), el("br"),
    s.summary ?? el("span", { className: "muted", textContent: `summary: ${Object.entries(s.steps ?? {}).map(([k, v]) => `${k} ${v}`).join(", ") || "pending"}` }),
  ], "No past sessions yet."));
}

async function refreshThreads() {
  const reviewer = me()?.reviewer;
  $("threads-hint").textContent = reviewer ? "Every visit's thread: open one, read it, mark it reviewed."
    : `Threads of ${me()?.name}'s visits. A reviewer (Dr. Rivera) marks them reviewed.`;
  const { threads } = await api("/visits/threads");
  demo.threads = threads;
  $("threads").replaceChildren(...threads.map((t) => {
    const li = el("li", { className: t.thread_id === openThread ? "selected" : "" },
      el("b", { textContent: t.title }), ` · ${t.subject_id} · ${when(t.created_at)} · ${t.visit_status}`,
      el("span", { className: `badge ${t.status}`, textContent: t.status }));
    li.dataset.thread = t.thread_id;
    li.onclick = () => showThread(t.thread_id);
    return li;
  }));
  if (!threads.length) $("threads").append(el("li", { className: "muted", textContent: "No visits yet." }));
}

async function showThread(id) {
  openThread = id;
  const t = await api(`/visits/threads/${encodeURIComponent(id)}`);
  demo.thread = t;
  $("thread").hidden = false;
  $("thread-title").textContent = t.title;
  $("thread-meta").textContent = `${t.subject_id} · ${when(t.created_at)} · visit ${t.visit_status} · ${t.status}`;
  $("thread-summary").textContent = t.summary ?? "(being written…)";
  $("thread-actions").replaceChildren(...(t.action_items ?? []).map((a) =>
    el("li", { textContent: `${a.description}${a.owner ? ` — ${a.owner}` : ""}${a.due ? `, due ${a.due}` : ""}${a.priority ? ` (${a.priority})` : ""}` })));
  $("thread-answers").tBodies[0].replaceChildren(...(t.answers ?? []).map((a) => el("tr", {},
    el("td", { textContent: a.question }), el("td", { textContent: a.answer ?? "" }), el("td", { className: "muted", textContent: a.status }))));
  $("thread-transcript").replaceChildren(...(t.transcript ?? []).map((e) => el("li", { className: e.role, textContent: e.text })));
  $("thread-reviews").replaceChildren(...(t.reviews ?? []).map((r) => el("li", { textContent: `${r.reviewer}: ${r.notes || "(no notes)"} — ${when(r.reviewed_at ?? r.at)}` })));
  $("review").hidden = !me()?.reviewer;
  for (const li of $("threads").children) li.classList.toggle("selected", li.dataset.thread === id);
}

$("review").onsubmit = async (e) => {
  e.preventDefault();
  try {
    demo.thread = await api(`/visits/threads/${encodeURIComponent(openThread)}/review`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ notes: $("review-notes").value }) });
    $("review-notes").value = "";
    await showThread(openThread);
    await refreshThreads();
  } catch (err) { showError(err.message); }
};

async function refresh() {
  if (!info) return;
  try {
    if (agent?.name === "memory-agent") await refreshMemory();
    else await refreshThreads();
    demo.refreshes += 1;
  } catch (err) { showError(err.message); }
}

for (const b of document.querySelectorAll(".tabs button")) {
  b.onclick = () => {
    for (const o of document.querySelectorAll(".tabs button")) o.classList.toggle("active", o === b);
    for (const tab of document.querySelectorAll("#memory-panel .tab")) tab.hidden = tab.id !== b.dataset.tab;
  };
}

async function boot() {
  info = demo.info = await (await fetch("/api/demo/info")).json();
  $("upstream").textContent = `voice: ${info.upstream} · brain: ${info.brain}`;
  $("user").replaceChildren(...info.users.map((u) => new Option(`${u.name}${u.reviewer ? " (reviewer)" : ""}`, u.id)));
  if (params.get("user")) $("user").value = params.get("user");
  $("type-only").checked = params.get("mic") === "off";
  $("agents").replaceChildren(...info.agents.map((a) => {
    const b = el("button", { textContent: a.title });
    b.dataset.agent = a.name;
    b.onclick = () => pickAgent(a.name);
    return b;
  }));
  $("user").onchange = () => { openThread = null; $("thread").hidden = true; showPersonaHint(); refresh(); };
  $("persona").onchange = showPersonaHint;
  $("start").onclick = startCall;
  $("stop").onclick = () => call?.stop();
  pickAgent(params.get("agent") ?? info.agents[0].name);
  setInterval(refresh, 3000);  // post-call results land in the background
  demo.ready = true;
}

boot().catch((err) => showError(`could not load the demo: ${err.message}`));
