"""Media-track audio attributed to items over WebRTC (TrackTimeline), and the core's cut at the service's
position once the audio it played has arrived. No sockets, no clock."""

from __future__ import annotations

from aoai_realtime.agents.core import CoreConfig, VoiceCore
from aoai_realtime.agents.track import TrackTimeline
from aoai_realtime.protocol import events as ev

from .builders import message_added, response_created, said, said_done

SILENCE = bytes(960)  # 20 ms of digital silence
SOUND = b"\x00\x10" * 480  # 20 ms of sound


def test_idle_silence_before_the_items_first_sound_is_not_its_audio() -> None:
    track = TrackTimeline()
    track.start("a1")
    assert track.feed(SILENCE) == ([], [])
    pieces, _ = track.feed(SOUND + SILENCE)
    assert pieces == [("a1", SOUND + SILENCE)]  # silence after the first sound is part of the item (a pause)
    assert track.received_ms == {"a1": 40.0}


def test_a_server_cut_waits_for_the_audio_still_in_flight_then_settles() -> None:
    track = TrackTimeline()
    track.start("a1")
    track.feed(SOUND * 2)
    assert track.server_cut("a1", 70) is False  # 40 ms arrived, the service played 70
    track.stop()
    track.start("a2")  # the next answer is announced before the rest of a1's audio arrives
    pieces, settled = track.feed(SOUND * 2)
    assert pieces == [("a1", SOUND + SOUND[:480]), ("a2", SOUND[480:])]
    assert track.received_ms["a1"] == 70.0 and settled == [("a1", 70)]
    assert track.received_ms["a2"] == 10.0  # the rest of the frame is the next item's
    assert track.server_cut("a2", 5) is True  # already arrived: settled at once


def test_abandon_settles_with_what_arrived() -> None:
    track = TrackTimeline()
    track.start("a1")
    track.feed(SOUND)
    track.server_cut("a1", 100)
    assert track.awaited == ["a1"]
    assert track.abandon({"a1"}) == [("a1", 100)] and track.awaited == []


def test_core_cut_is_provisional_until_the_services_position_has_arrived() -> None:
    core = VoiceCore(CoreConfig(mode="webrtc", audio_onsets=False), clock=lambda: 0.0)
    core.connecting()
    core.connected()
    for event in (response_created("r1"), message_added("r1", "a1"), said_done("r1", "a1", "one two three four")):
        core.handle(event)
    core.handle(ev.OutputAudioBufferStarted(response_id="r1"))
    core.track_audio(SILENCE + SOUND * 10)  # 200 ms of the item
    core.handle(ev.InputAudioBufferSpeechStartedEvent(item_id="u2", audio_start_ms=0))
    entry = core.transcript.entry("a1")
    assert entry is not None and entry.interrupted and not entry.final  # our estimate; the service's comes
    core.handle(ev.ConversationItemTruncatedEvent(item_id="a1", content_index=0, audio_end_ms=400))
    core.handle(ev.OutputAudioBufferCleared(response_id="r1"))
    assert not core.transcript.entry("a1").final  # type: ignore[union-attr]
    core.track_audio(SOUND * 10)  # the other 200 ms it played, still in flight at the cut
    entry = core.transcript.entry("a1")
    assert entry is not None and entry.final and core.track.received_ms["a1"] == 400.0


def test_webrtc_text_arriving_while_the_track_plays_marks_no_place_in_its_audio() -> None:
    # Over WebRTC the transcript comes on the data channel and the audio on the media track, each on its own
    # schedule: the rest of the answer's text arriving after the track's first frame says nothing about where
    # that text is spoken. Taken as "this audio speaks it", it squeezed every word before it into the first
    # 20 ms, and a cut at 940 ms kept 55 of 57 words (the test over real sockets failed that way under load).
    from aoai_realtime.bench.agents import _spoken_pieces, _truth
    from aoai_realtime.engine.speech.tone import ToneTts

    story = "The quick brown fox jumps over the lazy dog. Then it runs far away into the deep green forest."
    text = " ".join([story] * 3)
    pieces = _spoken_pieces(text)
    voice = b"".join(ToneTts().synthesize_with_timings(piece)[0] for piece in pieces)
    first = len(pieces[0])
    assert text[:first] == pieces[0]
    end_ms = 940  # within the first piece: every word before the cut has its own onset
    core = VoiceCore(CoreConfig(mode="webrtc"), clock=lambda: 0.0)
    core.connecting()
    core.connected()
    for event in (response_created("r1"), message_added("r1", "a1"), said("r1", "a1", text[:first])):
        core.handle(event)
    core.handle(ev.OutputAudioBufferStarted(response_id="r1"))
    core.track_audio(SILENCE + voice[:960])
    core.handle(said("r1", "a1", text[first:]))  # the rest of the text, after the track's first frame
    core.handle(said_done("r1", "a1", text))
    for i in range(960, end_ms * 48, 960):
        core.track_audio(voice[i : min(i + 960, end_ms * 48)])
    core.handle(ev.InputAudioBufferSpeechStartedEvent(item_id="u2", audio_start_ms=0))
    core.handle(ev.ConversationItemTruncatedEvent(item_id="a1", content_index=0, audio_end_ms=end_ms))
    core.handle(ev.OutputAudioBufferCleared(response_id="r1"))
    entry = core.transcript.entry("a1")
    heard = [w for w, start in zip(text.split(), _truth(text), strict=True) if start < end_ms]
    assert entry is not None and entry.final and entry.interrupted
    assert entry.text.split() == heard
