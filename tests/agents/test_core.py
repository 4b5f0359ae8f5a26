"""The sans-I/O assistant core, driven event by event: no sockets, no sleeps, a fake clock."""

from __future__ import annotations

from typing import Any

import pytest

from aoai_realtime.agents.core import (
    CancelTool,
    CoreConfig,
    Play,
    RunTool,
    Send,
    StateChanged,
    StopPlayback,
    TurnCompleted,
    VoiceCore,
)
from aoai_realtime.agents.metrics import PriceTable, Usage
from aoai_realtime.agents.state import AssistantState, IllegalTransition
from aoai_realtime.agents.tools import ToolCall, ToolPolicy, ToolResult
from aoai_realtime.protocol import events as ev

from .builders import (
    audio,
    audio_done,
    call,
    committed,
    error,
    message_added,
    output_added,
    response_created,
    response_done,
    said,
    said_done,
    speech_started,
    speech_stopped,
)

S = AssistantState


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(mode: str = "websocket", **kw: Any) -> tuple[VoiceCore, FakeClock]:
    clock = FakeClock()
    core = VoiceCore(CoreConfig(mode=mode, **kw), clock=clock)  # type: ignore[arg-type]
    core.connecting()
    core.connected()
    assert core.state is S.LISTENING
    return core, clock


def sent(actions: list[Any]) -> list[ev.ClientEvent]:
    return [a.event for a in actions if isinstance(a, Send)]


def feed(core: VoiceCore, *events: Any) -> list[Any]:
    out: list[Any] = []
    for e in events:
        out.extend(core.handle(e))
    return out


def user_turn(core: VoiceCore, item: str = "u1") -> None:
    feed(core, speech_started(item), speech_stopped(item), committed(item))


def test_speaking_starts_on_first_played_frame_and_ends_when_drained_not_at_response_done() -> None:
    core, _ = make()
    user_turn(core)
    assert core.state is S.THINKING
    out = feed(core, response_created("r1"), message_added("r1", "a1"), audio("r1", "a1", 200))
    assert any(isinstance(a, Play) for a in out)
    assert core.state is S.THINKING  # received is not heard
    core.played(480)
    assert core.state is S.SPEAKING
    feed(core, audio_done("r1", "a1"), response_done("r1"))
    assert core.state is S.SPEAKING  # response.done while audio still plays: still speaking
    core.played(4800 - 480 - 1)
    assert core.state is S.SPEAKING
    out = core.played(1)
    assert core.state is S.LISTENING
    assert [a.trigger.value for a in out if isinstance(a, StateChanged)] == ["playback_drained"]
    assert any(isinstance(a, TurnCompleted) for a in out)


def test_player_running_dry_mid_answer_is_not_the_end() -> None:
    core, _ = make()
    user_turn(core)
    feed(core, response_created("r1"), audio("r1", "a1", 20))
    core.played(480)  # played everything received so far; more is coming (no audio.done yet)
    assert core.state is S.SPEAKING


def test_barge_in_websocket_truncates_at_audio_heard_and_cuts_the_transcript() -> None:
    core, _ = make()
    user_turn(core)
    text = "one two three four five six"
    feed(core, response_created("r1"), message_added("r1", "a1"), said("r1", "a1", text),
         said_done("r1", "a1", text), audio("r1", "a1", 3000), audio_done("r1", "a1"))
    core.played(24 * 1234)  # 1234 ms heard
    out = feed(core, speech_started("u2"))
    assert isinstance(out[0], StopPlayback)
    truncates = [e for e in sent(out) if isinstance(e, ev.ConversationItemTruncateEvent)]
    assert truncates == [ev.ConversationItemTruncateEvent(item_id="a1", content_index=0, audio_end_ms=1234)]
    assert core.state is S.LISTENING
    entry = core.transcript.entry("a1")
    assert entry is not None and entry.interrupted
    assert text.startswith(entry.text) and 0 < len(entry.text.split()) < 6
    # audio of the interrupted answer still in flight is never played
    assert not any(isinstance(a, Play) for a in feed(core, audio("r1", "a1", 100)))
    assert core.playback.empty


def test_barge_in_before_anything_was_heard_deletes_the_item_and_with_no_audio_sends_nothing() -> None:
    core, _ = make()
    user_turn(core)
    feed(core, response_created("r1"), audio("r1", "a1", 500))
    out = feed(core, speech_started("u2"))
    assert sent(out) == [ev.ConversationItemDeleteEvent(item_id="a1")]

    core, _ = make()
    user_turn(core)
    feed(core, response_created("r1"), message_added("r1", "a1"))
    out = feed(core, speech_started("u2"))
    assert not any(isinstance(e, ev.ConversationItemTruncateEvent | ev.ConversationItemDeleteEvent)
                   for e in sent(out))


def test_truncate_never_passes_the_items_known_audio_length() -> None:
    clock = FakeClock()
    core = VoiceCore(CoreConfig(), clock=clock, item_audio_ms=lambda item: 800.0)
    core.connecting()
    core.connected()
    user_turn(core)
    feed(core, response_created("r1"), audio("r1", "a1", 1000))
    core.played(24 * 900)
    out = feed(core, speech_started("u2"))
    truncate = next(e for e in sent(out) if isinstance(e, ev.ConversationItemTruncateEvent))
    assert truncate.audio_end_ms == 800


def test_webrtc_follows_output_audio_buffer_events_and_clears_on_barge_in() -> None:
    core, clock = make("webrtc")
    user_turn(core)
    out = feed(core, response_created("r1"), message_added("r1", "a1"), said("r1", "a1", "hello big world"))
    assert not any(isinstance(a, Play) for a in out)
    feed(core, ev.OutputAudioBufferStarted(response_id="r1"))
    assert core.state is S.SPEAKING
    feed(core, response_done("r1"))
    assert core.state is S.SPEAKING
    clock.now += 0.5
    out = feed(core, speech_started("u2"))
    assert ev.OutputAudioBufferClearEvent() in sent(out)
    assert not any(isinstance(e, ev.ConversationItemTruncateEvent) for e in sent(out))  # the server truncates
    assert core.state is S.LISTENING
    assert core.transcript.entry("a1").interrupted  # type: ignore[union-attr]


def test_webrtc_stopped_drains_and_flushes() -> None:
    core, _ = make("webrtc")
    user_turn(core)
    feed(core, response_created("r1"), message_added("r1", "a1"), said_done("r1", "a1", "all of it"),
         ev.OutputAudioBufferStarted(response_id="r1"), response_done("r1"))
    feed(core, ev.OutputAudioBufferStopped(response_id="r1"))
    assert core.state is S.LISTENING
    assert core.transcript.entry("a1").text == "all of it"  # type: ignore[union-attr]


def test_a_late_stopped_after_barge_in_changes_nothing() -> None:
    core, _ = make("webrtc")
    user_turn(core)
    feed(core, response_created("r1"), message_added("r1", "a1"), said("r1", "a1", "hello there"),
         ev.OutputAudioBufferStarted(response_id="r1"), speech_started("u2"))
    assert core.state is S.LISTENING
    assert not any(isinstance(a, StateChanged) for a in feed(core, ev.OutputAudioBufferStopped(response_id="r1")))
    assert core.state is S.LISTENING


def test_a_trigger_the_table_does_not_allow_raises_instead_of_being_skipped() -> None:
    core = VoiceCore(CoreConfig(mode="webrtc"), clock=FakeClock())  # never connected: idle
    with pytest.raises(IllegalTransition, match=r"'idle'.*'playback_started'"):
        core.handle(ev.OutputAudioBufferStarted(response_id="r1"))
    assert core.state is S.IDLE


def settle(core: VoiceCore, call_id: str, name: str = "t", rid: str = "r1") -> list[Any]:
    return core.tool_settled(ToolResult(ToolCall(call_id, name, "{}", rid), "ok", '"ok"', 5.0))


def test_parallel_calls_get_one_output_each_and_one_response_create_after_all_settle() -> None:
    core, _ = make()
    user_turn(core)
    out = feed(core, response_created("r1"), call("r1", "c1", "a"), call("r1", "c2", "b"),
               call("r1", "c1", "a"))  # a repeated event must not run the tool twice
    assert [a.call.call_id for a in out if isinstance(a, RunTool)] == ["c1", "c2"]
    assert [c.call_id for c in core.tools_in_flight] == ["c1", "c2"]
    out = settle(core, "c1")
    assert [type(e) for e in sent(out)] == [ev.ConversationItemCreateEvent]
    out = settle(core, "c2")  # the response is still active: no response.create yet
    assert [type(e) for e in sent(out)] == [ev.ConversationItemCreateEvent]
    assert settle(core, "c2") == []  # exactly once
    out = feed(core, response_done("r1"))
    assert sent(out) == [ev.ResponseCreateEvent()]
    assert core.state is S.THINKING
    # the follow-up arrives; nothing more is asked for
    out = feed(core, output_added("c1"), output_added("c2"), response_created("r2"), response_done("r2"))
    assert sent(out) == []


def test_calls_settling_after_response_done_ask_once() -> None:
    core, _ = make()
    user_turn(core)
    feed(core, response_created("r1"), call("r1", "c1", "a"), call("r1", "c2", "b"))
    assert sent(feed(core, response_done("r1"))) == []
    assert core.state is S.THINKING  # tools still running: not silent
    assert [type(e) for e in sent(settle(core, "c2"))] == [ev.ConversationItemCreateEvent]
    out = settle(core, "c1")
    assert [type(e) for e in sent(out)] == [ev.ConversationItemCreateEvent, ev.ResponseCreateEvent]


def test_active_response_conflict_is_recovered_without_double_answers() -> None:
    core, _ = make()
    user_turn(core)
    feed(core, response_created("r1"), call("r1", "c1", "a"), response_done("r1"))
    out = settle(core, "c1")
    assert ev.ResponseCreateEvent() in sent(out)
    # a VAD response got in first; ours is rejected
    feed(core, output_added("c1"))
    out = feed(core, speech_started("u2"), speech_stopped("u2"), response_created("r_vad"),
               error("conversation_already_has_active_response", "already has an active response: r_vad"))
    assert ev.ResponseCreateEvent() not in sent(out)
    out = feed(core, response_done("r_vad"))
    assert ev.ResponseCreateEvent() not in sent(out)  # the VAD response already saw the output
    assert core.writer.conflicts == 1


def test_conflict_before_outputs_were_seen_retries_after_the_active_response() -> None:
    core, _ = make()
    core.writer.on_event(response_created("r_other"))
    requested = core.writer.request()
    assert requested == []  # never while a response is active
    out = feed(core, response_done("r_other"))
    assert sent(out) == [ev.ResponseCreateEvent()]
    out = feed(core, error("conversation_already_has_active_response", "active response in progress: resp_X"))
    assert core.writer.active_response_id == "resp_X"
    out = feed(core, response_done("resp_X"))
    assert sent(out) == [ev.ResponseCreateEvent()]  # asked again: nobody answered yet


@pytest.mark.parametrize("policy", [ToolPolicy.CANCEL, ToolPolicy.FINISH])
def test_tools_running_at_barge_in_follow_the_policy(policy: ToolPolicy) -> None:
    core, _ = make(tool_policy=policy)
    user_turn(core)
    feed(core, response_created("r1"), call("r1", "c1", "slow"), response_done("r1"))
    out = feed(core, speech_started("u2"))
    cancels = [a.call_id for a in out if isinstance(a, CancelTool)]
    assert cancels == (["c1"] if policy is ToolPolicy.CANCEL else [])
    out = core.tool_settled(ToolResult(ToolCall("c1", "slow", "{}", "r1"), "cancelled", "{}", 1.0))
    # the output is still delivered, but no response.create: the user's turn brings its own answer
    assert [type(e) for e in sent(out)] == [ev.ConversationItemCreateEvent]


def test_silent_response_returns_to_listening() -> None:
    core, _ = make()
    user_turn(core)
    feed(core, response_created("r1"))
    feed(core, response_done("r1", status="cancelled"))
    assert core.state is S.LISTENING


def test_metrics_latency_from_end_of_speech_sent_to_first_audio_heard_and_cost() -> None:
    core, clock = make(prices=PriceTable(audio_input=10.0, audio_output=20.0, text_input=1.0))
    for _ in range(50):  # 50 frames of 20 ms: 1000 ms of user audio, sent one frame per 20 ms
        clock.now += 0.02
        core.audio_sent(480)
    speech_end_sent = clock.now - 0.0  # the frame holding ms 1000 went out now
    clock.now += 0.5  # VAD silence wait + network
    feed(core, speech_started(), speech_stopped(at=1000))
    clock.now += 0.3
    usage = {"input_token_details": {"audio_tokens": 100, "text_tokens": 10,
                                     "cached_tokens_details": {"audio_tokens": 40}},
             "output_token_details": {"audio_tokens": 50, "text_tokens": 5}}
    feed(core, response_created("r1"), audio("r1", "a1", 40), audio_done("r1", "a1"))
    clock.now += 0.02
    core.played(480)
    feed(core, response_done("r1", usage=usage))
    clock.now += 0.02
    out = core.played(480)
    turn = next(a.metrics for a in out if isinstance(a, TurnCompleted))
    # first frame started playing 20 ms before it was reported
    assert turn.response_latency_ms == pytest.approx((clock.now - 0.04 - speech_end_sent) * 1000)
    assert turn.usage == Usage(text_input=10, audio_input=60, audio_cached_input=40, text_output=5,
                               audio_output=50)
    assert turn.cost == pytest.approx((10 * 1.0 + 60 * 10.0 + 40 * 0.4 + 5 * 16.0 + 50 * 20.0) / 1e6)


def test_late_user_transcript_after_the_answer_keeps_order() -> None:
    core, _ = make()
    feed(core, speech_started("u1"), speech_stopped("u1"), committed("u1", None))
    feed(core, response_created("r1"), message_added("r1", "a1"), said_done("r1", "a1", "Hi."),
         audio("r1", "a1", 20), audio_done("r1", "a1"))
    core.played(480)
    feed(core, ev.ConversationItemInputAudioTranscriptionCompletedEvent(
        item_id="u1", content_index=0, transcript="hello", usage={}))
    assert [(e.role, e.text) for e in core.transcript.entries()] == [("user", "hello"), ("assistant", "Hi.")]
