// use-voice-assistant.js — the React hook over RealtimeCall. An ES module; no build step, no npm needed here:
// you hand it your React, so it works with React from a bundle, an import map or a <script> UMD build.
//
//   import * as React from "react";
//   import { makeUseVoiceAssistant } from "/use-voice-assistant.js";
//   const useVoiceAssistant = makeUseVoiceAssistant(React);
//
//   function VoiceButton() {
//     const { state, transcript, start, stop } = useVoiceAssistant({ persona: "assistant" });
//     const live = !["idle", "error"].includes(state);
//     return <>
//       <button onClick={() => (live ? stop() : start())}>{live ? "Hang up" : "Talk"}</button> <b>{state}</b>
//       <ol>{transcript.map((e) => <li key={e.id} className={e.role}>{e.text}</li>)}</ol>
//     </>;
//   }
//
// The call is hung up when the component unmounts (the effect's cleanup), so a page that navigates away never
// leaves a microphone open or a call running on the server.

import { RealtimeCall } from "./realtime-call.js";

/**
 * Build the `useVoiceAssistant(options)` hook for this React (anything with useState, useEffect, useRef and
 * useCallback). `options` are RealtimeCall's (persona, headers, audioElement, microphone, ...); the values
 * at the time of `start()` are used.
 *
 * The hook returns {state, transcript, error, start, stop, sendText}: `state` is RealtimeCall's state
 * ("idle", "connecting", "connected", "listening", "thinking", "speaking", "error"), `transcript` its entries
 * [{id, role, text, final, interrupted}] revealed in step with the voice, `start(overrides)` places the call
 * (hanging up any earlier one), `stop()` hangs up, `sendText(text)` adds a typed user turn (the server creates the reply). With
 * `microphone: "off"` (or "auto" and no microphone) the call is typed only.
 */
export function makeUseVoiceAssistant(React) {
  const { useState, useEffect, useRef, useCallback } = React;
  return function useVoiceAssistant(options = {}) {
    const callRef = useRef(null);
    const optionsRef = useRef(options);
    optionsRef.current = options;
    const [state, setState] = useState("idle");
    const [transcript, setTranscript] = useState([]);
    const [error, setError] = useState(null);

    const stop = useCallback(async () => {
      const call = callRef.current;
      callRef.current = null;
      if (call) await call.stop();
    }, []);

    const start = useCallback(async (overrides = {}) => {
      await stop();
      setError(null);
      setTranscript([]);
      const call = new RealtimeCall({ ...optionsRef.current, ...overrides });
      call.addEventListener("statechange", (e) => setState(e.detail.state));
      call.addEventListener("transcript", (e) => setTranscript(e.detail.entries));
      call.addEventListener("error", (e) => setError(e.detail.error));
      callRef.current = call;
      await call.start();
      return call;
    }, [stop]);

    const sendText = useCallback((text) => {
      const call = callRef.current;
      if (!call) throw new Error("start the call first");
      call.sendText(text);  // the message only: the server's response arbiter creates the reply
    }, []);

    // Unmount: hang up (closes the microphone, the peer connection, and the call on the server).
    useEffect(() => () => { const call = callRef.current; callRef.current = null; call?.stop(); }, []);

    return { state, transcript, error, start, stop, sendText };
  };
}
