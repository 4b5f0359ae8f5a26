"""One response: from the brain's outputs to the service's event sequence (reference 4.2, 4.3, 4.4).

``run_response`` is the body of a response task owned by an :class:`~.session.EngineSession`. It emits
``response.created``, opens an assistant message item on the first text (content part ``audio`` or ``text``),
streams transcript/text deltas and, in audio mode, synthesized audio (``response.output_audio.delta`` on
WebSocket; a paced media track on WebRTC), makes a ``function_call`` item per tool call, then closes every
open part and item and ends with ``response.done`` (with ``usage``) and ``rate_limits.updated``.

Cancellation (``response.cancel``, or VAD with ``interrupt_response``) cancels the task; the done events are
still sent ("also emitted when a Response is interrupted"), items marked ``incomplete`` and the response
``cancelled`` with ``status_details.reason``.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import math
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..audio.g711 import WireAudio
from ..errors import get_logger
from ..protocol import events as ev
from .brain.base import BrainOutput, BrainRequest, CallTool, ContextItem, Pause, Say
from .conversation import BYTES_PER_MS, Entry, pcm_ms, validate_new_item
from .errors import RequestRejected
from .pacing import hurry, latest_start
from .speech.tts import WordStarts, times_words

if TYPE_CHECKING:
    from .host import SessionHost as EngineSession

__all__ = ["ResponseRun", "prepare_brain", "run_response"]

log = get_logger(__name__)

T = TypeVar("T")
_WORD_TEXT = re.compile(r"\s*\S+")  # a word with the whitespace before it

_DELTA_MS = 200  # audio deltas of at most 200 ms
_SENTENCE_END = (".", "!", "?", ":", ";", "\n")


_FIRST_WORDS = 5  # an answer's first piece goes to TTS once it has this many words, even with no comma yet


def ready_to_speak(pending: str, *, first: bool) -> bool:
    """Whether text waiting to be spoken is synthesised now: each sentence as soon as it is complete, and the first
    clause of an answer (``first``: no audio yet) already at its comma, so the first audio goes out early."""
    end = pending.rstrip()
    return end.endswith(_SENTENCE_END) or (first and end.endswith(","))


def first_words_ready(pending: str, following: str) -> bool:
    """Whether an answer's first piece (no audio yet) is spoken before ``following`` text joins it: when
    ``following`` starts a new word and ``pending`` already holds ``_FIRST_WORDS`` words, so the first audio does
    not wait for a slow model's whole clause. Only whole words are spoken, and only text already sent: the
    transcript still gives each piece's text before the audio that speaks it."""
    return following[:1].isspace() and len(pending.split()) >= _FIRST_WORDS


@dataclass(eq=False)
class ResponseRun:
    """A response in flight. ``finished`` once its ``response.done`` is queued."""

    id: str
    params: dict[str, Any]
    out_of_band: bool
    task: asyncio.Task[None] | None = None
    created: asyncio.Event = field(default_factory=asyncio.Event)
    status: str = "in_progress"
    cancel_reason: str | None = None
    finished: bool = False
    audio_ms: int = 0
    output: list[Entry] = field(default_factory=list)


def _tokens(text: str) -> int:
    return math.ceil(len(text) / 4) if text else 0


class _Writer:
    """Turns brain outputs into events for one response."""

    def __init__(self, s: EngineSession, run: ResponseRun, *, audio_mode: bool, max_tokens: int | None) -> None:
        self.s = s
        self.run = run
        self.audio_mode = audio_mode
        self.max_tokens = max_tokens
        self.message: Entry | None = None
        self.message_index = 0
        self.text = ""
        self.pending = ""  # text waiting to be spoken (audio mode): synthesized a sentence at a time
        self.output_tokens_text = 0
        self.audio_bytes = 0  # pcm16 24 kHz generated, whatever the wire format
        self.wire = WireAudio(s.session["audio"]["output"]["format"]["type"])  # one stream per response
        self.started_playback = False
        self.limit_hit = False
        self.first_audio_at: float | None = None  # the session clock when the first audio went out
        self.sent = ""  # the message's text whose transcript deltas went out
        # Audio deltas (WebSocket) from a TTS that says where its words start: each word's transcript goes out
        # right before the audio delta in which it starts, as the service interleaves them, so a client that
        # anchors text to the audio after it places every word. Over WebRTC (media track) text goes as it comes.
        self.timed = audio_mode and s.audio_out is None and times_words(s.speech.tts)

    @property
    def part_type(self) -> str:
        return "audio" if self.audio_mode else "text"

    async def _add_item(self, entry: Entry) -> int:
        index = len(self.run.output)
        self.run.output.append(entry)
        await self.s.emit(
            ev.ResponseOutputItemAddedEvent(response_id=self.run.id, output_index=index, item=entry.to_item())
        )
        if not self.run.out_of_band:
            previous = self.s.conversation.add(entry)
            await self.s.emit(ev.ConversationItemAdded(item=entry.to_item(), previous_item_id=previous))
        return index

    async def say(self, text: str) -> None:
        if self.limit_hit:
            return
        if self.max_tokens is not None and self.output_tokens_text + _tokens(text) > self.max_tokens:
            self.limit_hit = True
            return
        self.output_tokens_text += _tokens(text)
        if self.message is None:
            self.message = Entry(
                wire={
                    "id": self.s.ids.new("item"),
                    "object": "realtime.item",
                    "type": "message",
                    "role": "assistant",
                    "status": "in_progress",
                    "content": [],
                }
            )
            self.message_index = await self._add_item(self.message)
            part = (
                ev.ContentPart(type="audio", transcript="") if self.audio_mode else ev.ContentPart(type="text", text="")
            )
            await self.s.emit(self._content_event(ev.ResponseContentPartAddedEvent, part))
        self.text += text
        ids = self._ids()
        if self.audio_mode:
            early = self._early()
            if early and first_words_ready(self.pending, text):
                await self._speak()
            if not self.timed:
                await self._transcript(text)
            self.pending += text
            if ready_to_speak(self.pending, first=early):
                await self._speak()
        else:
            await self.s.emit(ev.ResponseTextDeltaEvent(**ids, delta=text))

    def _runs_out_at(self) -> float | None:
        """The session clock time at which the listener will have heard all the audio sent so far (None before
        the first audio)."""
        if self.first_audio_at is None:
            return None
        return self.first_audio_at + pcm_ms(self.audio_bytes) / 1000.0

    def _early(self) -> bool:
        """Whether the pending text is spoken at its comma or after a few words rather than at its sentence's
        end: always for an answer's first piece; later when the audio in hand runs low (:func:`.pacing.hurry`)."""
        runs_out = self._runs_out_at()
        if runs_out is None:
            return True
        ahead_ms = (runs_out - self.s.clock.now()) * 1000.0
        return hurry(self.pending, ahead_ms=ahead_ms, pace=self.s.tts_pace)

    def _ids(self) -> dict[str, Any]:
        assert self.message is not None
        return {
            "response_id": self.run.id,
            "item_id": self.message.id,
            "output_index": self.message_index,
            "content_index": 0,
        }

    def _content_event(self, cls: Any, part: ev.ContentPart) -> Any:
        return cls(**self._ids(), part=part)

    async def _transcript(self, delta: str) -> None:
        await self.s.emit(ev.ResponseAudioTranscriptDeltaEvent(**self._ids(), delta=delta))
        self.sent += delta

    async def _speak(self) -> None:
        raw, self.pending = self.pending, ""
        text = raw.strip()
        tts = self.s.speech.tts
        if not text or tts is None or self.message is None:
            if self.timed and raw and self.message is not None:
                await self._transcript(raw)  # only whitespace: nothing to time
            return
        if self.timed:
            await self._speak_timed(raw)
            return
        # one worker-thread hop per chunk: the first audio goes out as soon as it exists
        chunks = iter(tts.synthesize(text))
        while (chunk := await self._synthesised(chunks, lambda c: c, text)) is not None:
            await self._audio(chunk)

    async def _synthesised(self, chunks: Iterator[T], pcm_of: Callable[[T], bytes], text: str) -> T | None:
        """The next chunk of ``chunks`` (``None`` at the end), made by the engine's synthesis queue; ``text`` is
        the piece they speak. A chunk is due at its latest start (:func:`.pacing.latest_start`), a first at once."""
        clock = self.s.clock
        started = clock.now()
        runs_out = self._runs_out_at()
        due = started if runs_out is None else latest_start(runs_out, text)
        chunk: T | None = await self.s.synthesis.run(functools.partial(next, chunks, None), deadline=due)
        if chunk is not None:
            self.s.tts_pace.observe(pcm_ms(len(pcm_of(chunk))), (clock.now() - started) * 1000.0)
        return chunk

    async def _speak_timed(self, raw: str) -> None:
        """Speak ``raw`` (text whose transcript has not gone out), sending each word's text right before the
        audio delta in which that word starts; text whose timing is unknown goes before the chunk's audio."""
        words = [m.start() for m in _WORD_TEXT.finditer(raw)]
        texts = [raw[a:b] for a, b in zip(words, [*words[1:], len(raw)], strict=True)]
        done = 0  # words whose text went out

        async def text_up_to(word: int) -> None:
            nonlocal done
            if word >= done:
                await self._transcript("".join(texts[done : word + 1]))
                done = word + 1

        tts: Any = self.s.speech.tts
        chunks: Iterator[tuple[bytes, WordStarts]] = iter(tts.synthesize_timed(raw.strip()))
        while (item := await self._synthesised(chunks, lambda c: c[0], raw)) is not None:
            pcm, starts = item
            if not starts:
                await text_up_to(len(texts) - 1)
            at = 0
            for word, ms in starts:
                cut = min(len(pcm), round(ms * BYTES_PER_MS / 2) * 2)
                if cut > at:
                    await self._audio(pcm[at:cut])
                    at = cut
                await text_up_to(word)
            if at < len(pcm):
                await self._audio(pcm[at:])
        await text_up_to(len(texts) - 1)

    async def _audio(self, pcm: bytes) -> None:
        assert self.message is not None
        self.s.voice_locked = True
        self.message.audio.setdefault(0, bytearray()).extend(pcm)
        self.audio_bytes += len(pcm)
        if self.first_audio_at is None:
            self.first_audio_at = self.s.clock.now()
        if self.s.audio_out is None:
            await self._deltas(self.wire.from_pcm(pcm))
            return
        if not self.started_playback:
            self.started_playback = True
            await self.s.emit(ev.OutputAudioBufferStarted(response_id=self.run.id))
        await self.s.audio_out.write(self.run.id, self.message.id, pcm)

    async def _deltas(self, wire: bytes) -> None:
        size = _DELTA_MS * self.wire.bytes_per_ms
        for start in range(0, len(wire), size):
            delta = base64.b64encode(wire[start : start + size]).decode("ascii")
            await self.s.emit(ev.ResponseAudioDeltaEvent(**self._ids(), delta=delta))

    async def close_message(self, status: str) -> None:
        if self.message is None:
            return
        if status == "completed" and self.audio_mode:
            await self._speak()
        ids = self._ids()
        if self.audio_mode:
            # What was sent: with word timings, a cut-off answer's text ends with the audio that went out.
            await self.s.emit(ev.ResponseAudioDoneEvent(**ids))
            await self.s.emit(ev.ResponseAudioTranscriptDoneEvent(**ids, transcript=self.sent))
            part = ev.ContentPart(type="audio", transcript=self.sent)
            content = [{"type": "output_audio", "transcript": self.sent}]
        else:
            await self.s.emit(ev.ResponseTextDoneEvent(**ids, text=self.text))
            part = ev.ContentPart(type="text", text=self.text)
            content = [{"type": "output_text", "text": self.text}]
        await self.s.emit(self._content_event(ev.ResponseContentPartDoneEvent, part))
        self.message.wire["content"] = content
        self.message.wire["status"] = status
        await self._item_done(self.message, self.message_index)
        self.run.audio_ms += pcm_ms(self.audio_bytes)
        self.message = None
        self.text = ""
        self.sent = ""
        self.audio_bytes = 0

    async def _item_done(self, entry: Entry, index: int) -> None:
        await self.s.emit(
            ev.ResponseOutputItemDoneEvent(response_id=self.run.id, output_index=index, item=entry.to_item())
        )
        if not self.run.out_of_band:
            previous = self.s.conversation.previous_of(entry.id) if entry.id in self.s.conversation else None
            await self.s.emit(ev.ConversationItemDone(item=entry.to_item(), previous_item_id=previous))

    async def call(self, name: str, arguments: str) -> None:
        await self.close_message("completed")
        self.output_tokens_text += _tokens(arguments)
        entry = Entry(
            wire={
                "id": self.s.ids.new("item"),
                "object": "realtime.item",
                "type": "function_call",
                "status": "in_progress",
                "name": name,
                "call_id": self.s.ids.new("call", 16),
                "arguments": "",
            }
        )
        index = await self._add_item(entry)
        call_id = str(entry.wire["call_id"])
        step = max(8, len(arguments) // 3 + 1)
        for start in range(0, len(arguments), step):
            await self.s.emit(
                ev.ResponseFunctionCallArgumentsDeltaEvent(
                    response_id=self.run.id,
                    item_id=entry.id,
                    output_index=index,
                    call_id=call_id,
                    delta=arguments[start : start + step],
                )
            )
        await self.s.emit(
            ev.ResponseFunctionCallArgumentsDoneEvent(
                response_id=self.run.id,
                item_id=entry.id,
                output_index=index,
                call_id=call_id,
                arguments=arguments,
                name=name,
            )
        )
        entry.wire["arguments"] = arguments
        entry.wire["status"] = "completed"
        await self._item_done(entry, index)


async def _context(s: EngineSession, params: dict[str, Any], *, transcripts: bool) -> tuple[ContextItem, ...]:
    entries: list[Entry] = []
    if "input" in params:
        for i, raw in enumerate(params["input"]):
            if isinstance(raw, dict) and raw.get("type") == "item_reference":
                entry = s.conversation.get(str(raw.get("id")))
                if entry is None:
                    raise RequestRejected(
                        f"Item with id '{raw.get('id')}' not found.",
                        code="item_not_found",
                        param=f"response.input[{i}]",
                    )
                entries.append(entry)
            elif isinstance(raw, dict):
                entries.append(validate_new_item(raw, s.ids.new("item")))
    else:
        entries = s.conversation.entries()
    items: list[ContextItem] = []
    for entry in entries:
        w = entry.wire
        kind = str(w.get("type"))
        if kind == "message":
            text = entry.text()
            if not text and transcripts and w.get("role") == "user":
                text = await s.transcript_of(entry)
            items.append(ContextItem(kind=kind, role=str(w.get("role")), text=text))
        elif kind == "function_call":
            items.append(
                ContextItem(
                    kind=kind,
                    name=str(w.get("name", "")),
                    arguments=str(w.get("arguments", "")),
                    call_id=str(w.get("call_id", "")),
                )
            )
        elif kind == "function_call_output":
            items.append(ContextItem(kind=kind, call_id=str(w.get("call_id", "")), output=str(w.get("output", ""))))
    return tuple(items)


async def _read_ahead(gen: AsyncIterator[BrainOutput], into: asyncio.Queue[BrainOutput | None]) -> None:
    """Read the brain's outputs as fast as it makes them (``None`` ends), so a model keeps generating while the
    response synthesises the text it already has. Events stay in the brain's order: only the response emits."""
    async for output in gen:
        into.put_nowait(output)
    into.put_nowait(None)


async def _next_output(ahead: asyncio.Queue[BrainOutput | None], reader: asyncio.Task[None]) -> BrainOutput | None:
    """The brain's next output (None when it is done); the brain's own failure is raised here."""
    while True:
        if not ahead.empty():
            return ahead.get_nowait()
        if reader.done():
            reader.result()  # raises the brain's failure
            return None
        getter = asyncio.ensure_future(ahead.get())
        try:
            await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not getter.done():
                getter.cancel()  # an item not taken stays in the queue
        if getter.done() and not getter.cancelled():
            return getter.result()


def _usage(s: EngineSession, run: ResponseRun, request: BrainRequest | None, writer: _Writer) -> dict[str, Any]:
    text_in = _tokens(request.instructions) if request else 0
    audio_in = 0
    if request is not None:
        for item in request.items:
            text_in += _tokens(item.text) + _tokens(item.arguments) + _tokens(item.output)
    for entry in s.conversation.entries() if "input" not in run.params else []:
        if entry in run.output:
            continue
        pcm = entry.audio.get(0)
        if pcm:
            ms = pcm_ms(len(pcm))
            audio_in += ms // 100 if entry.wire.get("role") == "user" else ms // 50
    audio_out = run.audio_ms // 50
    text_out = writer.output_tokens_text
    return {
        "total_tokens": text_in + audio_in + text_out + audio_out,
        "input_tokens": text_in + audio_in,
        "output_tokens": text_out + audio_out,
        "input_token_details": {
            "text_tokens": text_in,
            "audio_tokens": audio_in,
            "image_tokens": 0,
            "cached_tokens": 0,
            "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
    }


def prepare_brain(s: EngineSession) -> None:
    """Let a brain that can (a ``prepare(request)`` coroutine: the llm brain) read the session's fixed prompt,
    its instructions and tools, now rather than in the user's first turn (a long persona's prefix takes seconds
    to evaluate on a small machine). The request is built as :func:`run_response` builds a default response's,
    without items. Runs in the background; a failure is logged, never the session's."""
    prepare = getattr(s.brain, "prepare", None)
    if prepare is None:
        return
    session = s.session
    request = BrainRequest(
        instructions=str(session["instructions"]),
        tools=tuple(session["tools"]),
        tool_choice=session["tool_choice"],
        items=(),
        output_modalities=tuple(session["output_modalities"]),
        conversation=s.conversation_id,
    )

    async def run() -> None:
        try:
            await prepare(request)
        except Exception as exc:  # noqa: BLE001  # only a head start: the first turn evaluates the prompt anyway
            log.warning("the brain could not read the session's prompt ahead of its first turn: %s", exc)

    s.spawn(run())


async def run_response(s: EngineSession, run: ResponseRun) -> None:
    """The body of one response task. Emits everything from ``response.created`` to ``rate_limits.updated``."""
    params = run.params
    session = s.session
    modalities = list(params.get("output_modalities", session["output_modalities"]))
    audio_mode = "audio" in modalities
    out = session["audio"]["output"]
    voice = params.get("audio", {}).get("output", {}).get("voice", out["voice"])
    fmt = params.get("audio", {}).get("output", {}).get("format", out["format"])
    max_tokens = params.get("max_output_tokens", session["max_output_tokens"])
    base = {
        "id": run.id,
        "object": "realtime.response",
        "conversation_id": None if run.out_of_band else s.conversation_id,
        "output_modalities": modalities,
        "audio": {"output": {"format": fmt, "voice": voice}},
        "max_output_tokens": max_tokens,
        "metadata": params.get("metadata"),
    }
    await s.emit(
        ev.ResponseCreatedEvent(
            response=ev.Response(**base, status="in_progress", status_details=None, output=[], usage=None)
        )
    )
    run.created.set()
    writer = _Writer(s, run, audio_mode=audio_mode, max_tokens=None if max_tokens == "inf" else int(max_tokens))
    request: BrainRequest | None = None
    details: dict[str, Any] | None = None
    try:
        tools = tuple(params.get("tools", session["tools"]))
        tool_choice = params.get("tool_choice", session["tool_choice"])
        needs_text = bool(getattr(s.brain, "needs_transcripts", True))
        request = BrainRequest(
            instructions=str(params.get("instructions", session["instructions"])),
            tools=tools,
            tool_choice=tool_choice,
            items=await _context(s, params, transcripts=needs_text),
            output_modalities=tuple(modalities),
            metadata=dict(params.get("metadata") or {}),
            out_of_band=run.out_of_band,
            conversation=s.conversation_id,
        )
        names = {t.get("name") for t in tools if t.get("type", "function") == "function"}
        gen = s.brain.respond(request)
        ahead: asyncio.Queue[BrainOutput | None] = asyncio.Queue()
        reader = asyncio.get_running_loop().create_task(_read_ahead(gen, ahead))
        try:
            while (output := await _next_output(ahead, reader)) is not None:
                if isinstance(output, Pause):
                    await s.clock.sleep(output.seconds)
                elif isinstance(output, Say):
                    await writer.say(output.text)
                elif isinstance(output, CallTool):
                    if tool_choice == "none" or output.name not in names:
                        log.info("brain called tool %r which this response does not offer; dropped", output.name)
                        continue
                    await writer.call(output.name, output.arguments)
                if writer.limit_hit:
                    break
        finally:
            if not reader.done():
                reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            aclose = getattr(gen, "aclose", None)
            if aclose is not None:
                await aclose()
        await writer.close_message("incomplete" if writer.limit_hit else "completed")
        if writer.limit_hit:
            run.status = "incomplete"
            details = {"type": "incomplete", "reason": "max_output_tokens"}
        else:
            run.status = "completed"
    except asyncio.CancelledError:
        if run.cancel_reason is None or s.closed:
            raise  # the session is ending: nothing more to send
        await writer.close_message("incomplete")
        run.status = "cancelled"
        details = {"type": "cancelled", "reason": run.cancel_reason}
        if s.audio_out is not None and writer.started_playback:
            await s.clear_output_audio()
    except RequestRejected as exc:
        await writer.close_message("incomplete")
        run.status = "failed"
        details = {"type": "failed", "error": {"type": exc.type, "code": exc.code, "message": exc.message}}
    except Exception as exc:  # a failing brain or TTS fails the response, not the session (as the service does)
        log.exception("response %s failed", run.id)
        await writer.close_message("incomplete")
        run.status = "failed"
        details = {"type": "failed", "error": {"type": "server_error", "code": None, "message": str(exc)}}
    output_items = [e.to_item() for e in run.output]
    usage = _usage(s, run, request, writer)
    await s.emit(
        ev.ResponseDoneEvent(
            response=ev.Response(**base, status=run.status, status_details=details, output=output_items, usage=usage)
        )
    )
    run.finished = True
    await s.emit(
        ev.RateLimitsUpdatedEvent(
            rate_limits=[
                {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                {
                    "name": "tokens",
                    "limit": 800000,
                    "remaining": 800000 - usage["total_tokens"],
                    "reset_seconds": round(usage["total_tokens"] * 60 / 800000, 3),
                },
            ]
        )
    )
    if s.audio_out is not None and writer.started_playback and run.status != "cancelled":
        s.spawn(_report_drained(s, run))


async def _report_drained(s: EngineSession, run: ResponseRun) -> None:
    assert s.audio_out is not None
    await s.audio_out.wait_drained()
    await s.emit(ev.OutputAudioBufferStopped(response_id=run.id))
