// realtime-call.js — a browser voice call through the aoai-realtime SDP proxy. An ES module; no build step.
//
//   import { RealtimeCall } from "/realtime-call.js";
//   const call = new RealtimeCall({ persona: "assistant", audioElement: document.querySelector("audio") });
//   call.addEventListener("statechange", (e) => console.log(e.detail.state));
//   call.addEventListener("transcript", (e) => render(e.detail.entries));
//   await call.start();            // microphone, WebRTC offer -> POST /api/realtime/calls -> SDP answer
//   call.sendText("What did I tell you yesterday?");   // a typed turn; the server creates the reply
//   await call.stop();
//
// Without a microphone: `microphone: "off"` never asks for it (a text call: the user types, the assistant is
// still heard through a receive-only audio section); `microphone: "auto"` asks, and when the user refuses or has
// none the call goes on as a text call (the "microphone" event and `call.microphone` say why).
//
// The browser never sees a token: the server mints it, relays the offer upstream and runs the persona's tools
// on its own sideband. The page never sends `response.create`: a typed message is answered by the server's one
// response arbiter (never over an active response), so the page cannot choose a reply's instructions or
// tools. The state machine and the transcript sync mirror the Python VoiceAssistant:
// speaking starts at output_audio_buffer.started and ends at output_audio_buffer.stopped (never at
// response.done, which arrives while audio is still playing); assistant text is revealed at speech pace
// while its audio plays, so words never appear before they are heard.
//
// It also works when the data channel is filtered (Azure's ?webrtcfilter=on: no session.*, response.created or
// response.done reach the browser): the call is ready once the channel opens, and a text reply whose
// response.created never came ends at its response.output_text.done.

export const State = Object.freeze({
  IDLE: "idle", CONNECTING: "connecting", CONNECTED: "connected", LISTENING: "listening",
  THINKING: "thinking", SPEAKING: "speaking", ERROR: "error",
});

export const Trigger = Object.freeze({
  CONNECT: "connect", CONNECTED: "connected", READY: "ready", SPEECH_STARTED: "speech_started",
  SPEECH_STOPPED: "speech_stopped", RESPONSE_STARTED: "response_started", PLAYBACK_STARTED: "playback_started",
  PLAYBACK_DRAINED: "playback_drained", RESPONSE_FINISHED_SILENT: "response_finished_silent",
  FAILED: "failed", CLOSE: "close",
});

const S = State, T = Trigger;
const LIVE = [S.CONNECTED, S.LISTENING, S.THINKING, S.SPEAKING];

// The same table as aoai_realtime.agents.state.TRANSITIONS: "state|trigger" -> next state.
export const TRANSITIONS = new Map([
  [[S.IDLE, T.CONNECT], S.CONNECTING], [[S.ERROR, T.CONNECT], S.CONNECTING],
  [[S.CONNECTING, T.CONNECTED], S.CONNECTED], [[S.CONNECTED, T.READY], S.LISTENING],
  [[S.CONNECTED, T.SPEECH_STARTED], S.LISTENING], [[S.LISTENING, T.SPEECH_STARTED], S.LISTENING],
  [[S.THINKING, T.SPEECH_STARTED], S.LISTENING], [[S.SPEAKING, T.SPEECH_STARTED], S.LISTENING],
  [[S.LISTENING, T.SPEECH_STOPPED], S.THINKING], [[S.CONNECTED, T.SPEECH_STOPPED], S.THINKING],
  [[S.CONNECTED, T.RESPONSE_STARTED], S.THINKING], [[S.LISTENING, T.RESPONSE_STARTED], S.THINKING],
  [[S.THINKING, T.RESPONSE_STARTED], S.THINKING], [[S.SPEAKING, T.RESPONSE_STARTED], S.SPEAKING],
  [[S.THINKING, T.PLAYBACK_STARTED], S.SPEAKING], [[S.LISTENING, T.PLAYBACK_STARTED], S.SPEAKING],
  [[S.CONNECTED, T.PLAYBACK_STARTED], S.SPEAKING], [[S.SPEAKING, T.PLAYBACK_STARTED], S.SPEAKING],
  [[S.SPEAKING, T.PLAYBACK_DRAINED], S.LISTENING], [[S.THINKING, T.RESPONSE_FINISHED_SILENT], S.LISTENING],
  ...[S.CONNECTING, ...LIVE].map((s) => [[s, T.FAILED], S.ERROR]),
  ...Object.values(S).map((s) => [[s, T.CLOSE], S.IDLE]),
].map(([[state, trigger], next]) => [`${state}|${trigger}`, next]));

// Beta (preview) names of the assistant transcript events map onto GA.
const TRANSCRIPT_DELTA = new Set(["response.output_audio_transcript.delta", "response.audio_transcript.delta"]);
const TRANSCRIPT_DONE = new Set(["response.output_audio_transcript.done", "response.audio_transcript.done"]);

export class RealtimeCall extends EventTarget {
  /**
   * @param {object} options
   * @param {string} options.persona        a persona id the signed-in user is allowed (the only choice the browser makes)
   * @param {string} [options.callsUrl]     the SDP proxy route (default "/api/realtime/calls")
   * @param {object} [options.headers]      extra request headers, e.g. {Authorization: "Bearer ..."} for your auth hook
   * @param {HTMLAudioElement} [options.audioElement]  where the assistant is heard (required to decode remote audio)
   * @param {object} [options.audioConstraints]  getUserMedia audio constraints
   * @param {"on"|"auto"|"off"} [options.microphone]  "on" (default): a refused or missing microphone fails the
   *        call; "auto": ask, and go on as a text call without one; "off": never ask (a text call)
   * @param {boolean} [options.hearAssistant]  without a microphone, still receive the assistant's voice (a
   *        receive-only audio section; default true). false offers a data channel only (text replies where the
   *        upstream answers such offers with text, as the local engine does; through this server's SDP proxy the
   *        sideband does not allow it yet: see docs/demo.md)
   * @param {number} [options.wordsPerSecond]    pace of the transcript reveal while audio plays (default 3.5)
   * @param {number} [options.dataChannelTimeoutMs]  give up if the data channel does not open (default 10000)
   * @param {boolean} [options.webrtcFilter]  ask for Azure's filtered data channel (?webrtcfilter=on)
   */
  constructor({ persona, callsUrl = "/api/realtime/calls", headers = {}, audioElement = null,
                audioConstraints = {}, microphone = "on", hearAssistant = true, wordsPerSecond = 3.5,
                dataChannelTimeoutMs = 10000, webrtcFilter = false } = {}) {
    super();
    if (!persona) throw new Error("RealtimeCall needs a persona id");
    if (!["on", "auto", "off"].includes(microphone)) {
      throw new Error(`microphone must be "on", "auto" or "off", not ${microphone}`);
    }
    this.microphoneMode = microphone;
    this.hearAssistant = hearAssistant;
    /** {on, reason}: reason is null (on), "off" (not asked), "refused" or "none" (no microphone). */
    this.microphone = { on: false, reason: null };
    this.persona = persona;
    this.callsUrl = callsUrl;
    this.headers = headers;
    this.audioElement = audioElement;
    this.audioConstraints = audioConstraints;
    this.wordsPerSecond = wordsPerSecond;
    this.dataChannelTimeoutMs = dataChannelTimeoutMs;
    this.webrtcFilter = webrtcFilter;
    this._state = S.IDLE;
    this._entries = new Map();   // item_id -> {id, role, text, shown, final, interrupted}
    this._order = [];            // item ids in conversation order
    this._drip = null;           // {itemId, words[], timer}
    this._turn = null;           // {speechStoppedAt, responseAt}
    this._turns = 0;
    this._responses = new Map(); // response_id -> {audio: bool, tools: bool}
    this.pc = null;
    this.channel = null;
    this.stream = null;
    this.callPath = null;
  }

  get state() { return this._state; }

  /** The transcript in conversation order: [{id, role, text, final, interrupted}], text as heard so far. */
  get transcript() {
    return this._order.map((id) => this._entries.get(id)).filter((e) => e && (e.shown || e.final))
      .map(({ id, role, shown, final, interrupted }) => ({ id, role, text: shown, final, interrupted }));
  }

  /** Open the microphone (unless `microphone: "off"`) and the call. Resolves when the data channel is open. */
  async start() {
    this._fire(T.CONNECT);
    try {
      this.stream = await this._openMicrophone();
      const pc = (this.pc = new RTCPeerConnection({ iceServers: [] }));
      pc.addEventListener("track", (e) => {
        if (this.audioElement) { this.audioElement.srcObject = e.streams[0]; this.audioElement.play?.().catch(() => {}); }
      });
      pc.addEventListener("connectionstatechange", () => {
        if (pc.connectionState === "failed") this._fail(new Error("the WebRTC connection failed"));
      });
      if (this.stream) for (const track of this.stream.getAudioTracks()) pc.addTrack(track, this.stream);
      else if (this.hearAssistant) pc.addTransceiver("audio", { direction: "recvonly" });
      const channel = (this.channel = pc.createDataChannel("oai-events"));
      channel.addEventListener("message", (e) => this._onMessage(e.data));
      const opened = new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("the data channel did not open in time")), this.dataChannelTimeoutMs);
        channel.addEventListener("open", () => { clearTimeout(timer); resolve(); }, { once: true });
      });
      await pc.setLocalDescription(await pc.createOffer());
      const query = `persona=${encodeURIComponent(this.persona)}${this.webrtcFilter ? "&webrtcfilter=on" : ""}`;
      const url = `${this.callsUrl}${this.callsUrl.includes("?") ? "&" : "?"}${query}`;
      const resp = await fetch(url, {
        method: "POST", body: pc.localDescription.sdp,
        headers: { ...this.headers, "Content-Type": "application/sdp" }, credentials: "same-origin",
      });
      if (resp.status !== 201) {
        let message = `the server answered ${resp.status}`;
        try { message = (await resp.json()).error.message; } catch { /* not our JSON */ }
        const err = new Error(message);
        err.status = resp.status;
        err.retryAfter = Number(resp.headers.get("Retry-After")) || null;
        throw err;
      }
      this.callPath = resp.headers.get("Location");
      await pc.setRemoteDescription({ type: "answer", sdp: await resp.text() });
      await opened;
      this._fire(T.CONNECTED);
      this._fire(T.READY);  // a filtered channel never gets session.created; the session exists once it opens
    } catch (err) {
      this._fail(err);
      this._teardown();
      throw err;
    }
  }

  /** Hang up: close the connection and tell the server (which hangs up upstream). */
  async stop() {
    const path = this.callPath;
    this._teardown();
    this._flushDrip();
    this._fire(T.CLOSE);
    if (path) {
      await fetch(path, { method: "DELETE", headers: this.headers, credentials: "same-origin" }).catch(() => {});
    }
  }

  /** A typed user turn. Only the message goes on the data channel: the server's sideband sees it and creates the
   * one reply when no response is active (its response arbiter), so typed and spoken turns follow one rule.
   * (Pointed at an upstream directly, with no sideband, nothing creates that reply: this client is for the proxy.) */
  sendText(text) {
    this.send({ type: "conversation.item.create",
                item: { type: "message", role: "user", content: [{ type: "input_text", text }] } });
  }

  /** Send one client event on the data channel (reference 4.x), e.g. {type: "output_audio_buffer.clear"}. Do not
   * send `response.create` on a call through the server: its sideband creates every reply (see sendText). */
  send(event) {
    if (!this.channel || this.channel.readyState !== "open") throw new Error("the call is not connected");
    this.channel.send(JSON.stringify(event));
  }

  /** Barge in by hand: cancel the response and drop the audio not yet played (WebRTC, reference 4.4). */
  interrupt() {
    this.send({ type: "response.cancel" });
    this.send({ type: "output_audio_buffer.clear" });
  }

  /** Subscribe to a server event type ("*" for all); returns an unsubscribe function. */
  on(type, handler) {
    const listener = (e) => handler(e.detail);
    const name = type === "*" ? "event" : `event:${type}`;
    this.addEventListener(name, listener);
    return () => this.removeEventListener(name, listener);
  }

  // -- internals --------------------------------------------------------------------------------------------

  _emit(name, detail) { this.dispatchEvent(new CustomEvent(name, { detail })); }

  async _openMicrophone() {
    let stream = null, reason = "off";
    if (this.microphoneMode !== "off") {
      try {
        if (!navigator.mediaDevices?.getUserMedia) {  // no media devices at all (e.g. not a secure origin)
          throw Object.assign(new Error("no media devices"), { name: "NotFoundError" });
        }
        stream = await navigator.mediaDevices.getUserMedia({ audio: { ...this.audioConstraints } });
        reason = null;
      } catch (err) {
        const refused = ["NotAllowedError", "SecurityError"].includes(err.name);
        const missing = ["NotFoundError", "NotReadableError", "OverconstrainedError"].includes(err.name);
        if (this.microphoneMode === "on" || !(refused || missing)) {
          const message = refused ? "the microphone was refused: allow it for this page, or call by typing"
            : missing ? "no microphone could be opened: plug one in, or call by typing"
              : `the microphone could not be opened (${err.name}: ${err.message})`;
          throw Object.assign(new Error(message), { name: err.name });
        }
        reason = refused ? "refused" : "none";
      }
    }
    this.microphone = { on: stream !== null, reason };
    this._emit("microphone", this.microphone);
    return stream;
  }

  _fire(trigger) {
    const next = TRANSITIONS.get(`${this._state}|${trigger}`);
    if (next === undefined) return false;  // not a transition from here (e.g. a late event): ignored
    if (next !== this._state) {
      const previous = this._state;
      this._state = next;
      this._emit("statechange", { state: next, previous, trigger });
    }
    return true;
  }

  _fail(err) {
    this._emit("error", { error: err });
    this._fire(T.FAILED);
  }

  _teardown() {
    clearInterval(this._drip?.timer);
    this.channel?.close();
    this.pc?.close();
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.channel = this.pc = this.stream = null;
    this.callPath = null;
  }

  _entry(id, role) {
    let entry = this._entries.get(id);
    if (!entry) {
      entry = { id, role, text: "", shown: "", final: false, interrupted: false };
      this._entries.set(id, entry);
      this._order.push(id);
    }
    return entry;
  }

  _transcriptChanged() { this._emit("transcript", { entries: this.transcript }); }

  _onMessage(data) {
    let event;
    try { event = JSON.parse(data); } catch { return; }
    this._emit("event", event);
    this._emit(`event:${event.type}`, event);
    const now = performance.now();
    switch (event.type) {
      case "session.created":
      case "session.updated":
        this._fire(T.READY);
        break;
      case "input_audio_buffer.speech_started":
        if (this._state === S.SPEAKING) this._bargeIn();
        this._fire(T.SPEECH_STARTED);
        break;
      case "input_audio_buffer.speech_stopped":
        this._turn = { speechStoppedAt: now, responseAt: null };
        this._fire(T.SPEECH_STOPPED);
        break;
      case "conversation.item.added":
      case "conversation.item.created": {
        const item = event.item ?? {};
        if (item.type === "message" && item.id) {
          const entry = this._entry(item.id, item.role);
          // A typed user message carries its text in the item (spoken ones get it from the transcription).
          const typed = item.role === "user" ? (item.content ?? []).filter((p) => p.type === "input_text")
            .map((p) => p.text ?? "").join("") : "";
          if (typed && !entry.final) {
            entry.text = entry.shown = typed;
            entry.final = true;
            this._transcriptChanged();
          }
        }
        if (item.type === "function_call_output") this._emit("tool", { phase: "answered", call_id: item.call_id, output: item.output });
        break;
      }
      case "conversation.item.input_audio_transcription.completed": {
        const entry = this._entry(event.item_id, "user");
        entry.text = entry.shown = event.transcript ?? "";
        entry.final = true;
        this._transcriptChanged();
        break;
      }
      case "response.created":
        this._responses.set(event.response?.id, { audio: false, tools: false });
        if (this._turn && this._turn.responseAt === null) this._turn.responseAt = now;
        this._fire(T.RESPONSE_STARTED);
        break;
      case "response.function_call_arguments.done": {
        const r = this._responses.get(event.response_id);
        if (r) r.tools = true;
        this._emit("tool", { phase: "called", call_id: event.call_id, name: event.name, arguments: event.arguments });
        break;
      }
      case "output_audio_buffer.started": {
        const r = this._responses.get(event.response_id);
        if (r) r.audio = true;
        if (this._turn) {
          this._turns += 1;
          this._emit("latency", {
            turn: this._turns,
            speechStoppedToResponseMs: this._turn.responseAt === null ? null : this._turn.responseAt - this._turn.speechStoppedAt,
            speechStoppedToAudioMs: now - this._turn.speechStoppedAt,
          });
          this._turn = null;
        }
        this._startDrip();
        this._fire(T.PLAYBACK_STARTED);
        break;
      }
      case "output_audio_buffer.stopped":
        this._flushDrip();
        this._fire(T.PLAYBACK_DRAINED);
        break;
      case "output_audio_buffer.cleared":
        this._bargeIn();
        this._fire(T.PLAYBACK_DRAINED);
        break;
      case "response.done": {
        const id = event.response?.id;
        const r = this._responses.get(id) ?? { audio: false, tools: false };
        const output = event.response?.output ?? [];
        const tools = r.tools || output.some((item) => item.type === "function_call");
        this._responses.delete(id);
        // Speaking ends at output_audio_buffer.stopped. A response with neither audio nor tool calls pending
        // (text only, cancelled before audio, failed) returns to listening here.
        if (!r.audio && !tools) this._fire(T.RESPONSE_FINISHED_SILENT);
        break;
      }
      case "error":
        this._emit("servererror", event.error ?? {});
        break;
      case "response.output_text.delta": {
        // A text reply (a text session): nothing to keep pace with, so it is shown as it comes.
        const entry = this._entry(event.item_id, "assistant");
        entry.text = entry.shown = entry.text + (event.delta ?? "");
        this._transcriptChanged();
        break;
      }
      case "response.output_text.done": {
        const entry = this._entry(event.item_id, "assistant");
        entry.text = entry.shown = event.text ?? entry.text;
        entry.final = true;
        this._transcriptChanged();
        // Filtered channel: no response.created/done for this reply, so its text ends it.
        if (!this._responses.has(event.response_id)) this._fire(T.RESPONSE_FINISHED_SILENT);
        break;
      }
      default:
        if (TRANSCRIPT_DELTA.has(event.type)) this._onAssistantDelta(event.item_id, event.delta ?? "");
        else if (TRANSCRIPT_DONE.has(event.type)) this._onAssistantDone(event.item_id, event.transcript ?? "");
    }
  }

  _onAssistantDelta(itemId, delta) {
    const entry = this._entry(itemId, "assistant");
    entry.text += delta;
    // Buffered, not shown: the reveal follows playback (_startDrip), so text never runs ahead of the voice.
    if (this._drip && this._drip.itemId === itemId) this._drip.words.push(...splitWords(delta));
    else if (!this._drip && this._state === S.SPEAKING && entry.final === false) this._startDrip(itemId);
  }

  _onAssistantDone(itemId, transcript) {
    const entry = this._entry(itemId, "assistant");
    if (transcript && !entry.interrupted) entry.text = transcript;
    entry.final = true;
    if (!this._drip && this._state !== S.SPEAKING && !entry.interrupted) {
      entry.shown = entry.text;  // no audio for this item (text-only) or playback already drained
      this._transcriptChanged();
    }
  }

  _currentAssistantItem() {
    for (let i = this._order.length - 1; i >= 0; i--) {
      const entry = this._entries.get(this._order[i]);
      if (entry.role === "assistant" && !entry.interrupted && entry.shown.length < entry.text.length + 1) return entry;
    }
    return null;
  }

  _startDrip(itemId) {
    if (this._drip) return;
    const entry = itemId ? this._entries.get(itemId) : this._currentAssistantItem();
    if (!entry) return;
    const words = splitWords(entry.text.slice(entry.shown.length));
    const timer = setInterval(() => {
      const word = this._drip?.words.shift();
      if (word === undefined) return;
      entry.shown += word;
      this._transcriptChanged();
    }, 1000 / this.wordsPerSecond);
    this._drip = { itemId: entry.id, words, timer };
  }

  _flushDrip() {
    if (!this._drip) return;
    clearInterval(this._drip.timer);
    const entry = this._entries.get(this._drip.itemId);
    this._drip = null;
    if (entry && !entry.interrupted) {
      entry.shown = entry.text;
      this._transcriptChanged();
    }
  }

  _bargeIn() {
    // The user talked over the assistant: what was not heard is cut (the server truncates the item too).
    if (!this._drip) return;
    clearInterval(this._drip.timer);
    const entry = this._entries.get(this._drip.itemId);
    this._drip = null;
    if (entry) {
      entry.interrupted = true;
      entry.text = entry.shown;
      this._transcriptChanged();
    }
    this._emit("bargein", { item_id: entry?.id ?? null });
  }
}

function splitWords(text) {
  return text.match(/\S+\s*|\s+/g) ?? [];
}
