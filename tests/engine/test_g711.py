"""G.711 sessions (``audio/pcmu``, ``audio/pcma``; preview ``g711_ulaw``/``g711_alaw``): the engine hears 8 kHz
G.711 input and speaks G.711 deltas, as the service does for telephony. Fake clock, energy VAD, tone TTS."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from aoai_realtime.audio import resample
from aoai_realtime.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from aoai_realtime.engine import FakeClock, Say, ScriptedBrain
from aoai_realtime.protocol import events as ev
from aoai_realtime.testing.audio import silence, tone

from .conftest import Probe, make_session

CODECS = [("audio/pcmu", ulaw_encode, ulaw_decode), ("audio/pcma", alaw_encode, alaw_decode)]


def g711_session(fmt: str) -> dict[str, Any]:
    return {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "audio": {
                "input": {
                    "format": {"type": fmt},
                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                },
                "output": {"format": {"type": fmt}},
            },
        },
    }


def envelope(pcm24k: bytes) -> np.ndarray:
    x = np.frombuffer(pcm24k, "<i2").astype(float)
    n = len(x) // 480
    return np.sqrt(np.mean(x[: n * 480].reshape(n, 480) ** 2, axis=1))  # 20 ms RMS frames


@pytest.mark.parametrize(("fmt", "encode", "decode"), CODECS, ids=["pcmu", "pcma"])
async def test_a_g711_session_hears_and_speaks_g711(
    speech: Any, clock: FakeClock, fmt: str, encode: Callable[[bytes], bytes], decode: Callable[[bytes], bytes]
) -> None:
    # Lower-case words: tone speech puts capitals and punctuation above 4 kHz, which 8 kHz G.711 cannot carry
    # (nor can a phone line).
    async with make_session(speech, clock, ScriptedBrain([[Say("yes i heard you on the phone")]])) as session:
        p = Probe(session, clock)
        await p.send(g711_session(fmt))
        # The caller as a phone line sends it: 8 kHz G.711, one byte per sample, 30 ms per append.
        line = encode(resample(silence(990) + tone(600) + silence(700), 24_000, 8_000))
        out: list[ev.ServerEvent] = []
        for i in range(0, len(line), 240):
            out += await p.send(
                {"type": "input_audio_buffer.append", "audio": base64.b64encode(line[i : i + 240]).decode()}
            )
        started = next(e for e in out if isinstance(e, ev.InputAudioBufferSpeechStartedEvent))
        stopped = next(e for e in out if isinstance(e, ev.InputAudioBufferSpeechStoppedEvent))
        # Positions are milliseconds of the caller's audio, within one 30 ms VAD frame of where the tone was.
        assert abs(started.audio_start_ms - (990 - 300)) <= 30
        assert abs(stopped.audio_end_ms - 1590) <= 30
        out = await p.until("response.done", after=out)
        deltas = [e for e in out if isinstance(e, ev.ResponseAudioDeltaEvent)]
        wire = b"".join(base64.b64decode(e.delta) for e in deltas)
        entry = session.conversation.get(deltas[0].item_id)
        assert entry is not None
        generated = bytes(entry.audio[0])  # what the engine synthesised, pcm16 24 kHz
        # One byte per 8 kHz sample: the deltas carry the whole reply, 8 bytes per millisecond...
        assert abs(len(wire) - len(generated) // 6) <= 1
        assert max(len(base64.b64decode(e.delta)) for e in deltas) <= 200 * 8
        # ...and it is the same sound: its loudness over time follows what was synthesised.
        heard = envelope(resample(decode(wire), 8_000, 24_000))
        said = envelope(generated)
        n = min(len(heard), len(said))
        assert np.corrcoef(heard[:n], said[:n])[0, 1] > 0.95
        # conversation.item.retrieve gives the audio in the session's format too.
        out = await p.send({"type": "conversation.item.retrieve", "item_id": entry.id})
        item = next(e for e in out if isinstance(e, ev.ConversationItemRetrieved)).item
        assert abs(len(base64.b64decode(item.content[0].audio)) - len(wire)) <= 1
        # Truncation counts milliseconds, whatever the format: 8 bytes of G.711 each.
        out = await p.send(
            {"type": "conversation.item.truncate", "item_id": entry.id, "content_index": 0, "audio_end_ms": 300}
        )
        assert any(isinstance(e, ev.ConversationItemTruncatedEvent) for e in out)
        assert len(entry.audio[0]) == 300 * 48


async def test_preview_names_and_an_audio_item_in_g711(speech: Any, clock: FakeClock) -> None:
    async with make_session(speech, clock, dialect="beta") as session:
        p = Probe(session, clock)
        out = await p.send(
            {
                "type": "session.update",
                "session": {"input_audio_format": "g711_ulaw", "output_audio_format": "g711_ulaw"},
            }
        )
        assert any(isinstance(e, ev.SessionUpdatedEvent) for e in out)
        # An audio item given in the input format is stored as 24 kHz pcm16: 500 ms either way.
        line = ulaw_encode(resample(tone(500), 24_000, 8_000))
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_audio", "audio": base64.b64encode(line).decode()}],
        }
        out = await p.send({"type": "conversation.item.create", "item": item})
        added = next(e for e in out if isinstance(e, ev.ConversationItemAdded))
        entry = session.conversation.get(added.item.id)
        assert entry is not None and abs(len(entry.audio[0]) // 48 - 500) <= 1
