from __future__ import annotations

from aoai_realtime.agents.playback import PlaybackClock, truncate_position_ms


def test_clock_maps_played_samples_onto_items_in_order() -> None:
    clock = PlaybackClock()
    clock.enqueue("a", 2400)  # 100 ms
    clock.enqueue("a", 2400)
    clock.enqueue("b", 4800)
    moved = clock.advance(3600)
    assert [(p.item_id, p.played_ms, p.started) for p in moved] == [("a", 150.0, True)]
    moved = clock.advance(2400)  # finishes a (50 ms), starts b (50 ms)
    assert [(p.item_id, p.played_ms, p.started) for p in moved] == [("a", 200.0, False), ("b", 50.0, True)]
    assert clock.current_item == "b"
    assert clock.queued_samples == 3600


def test_clear_drops_unplayed_audio_and_later_progress_is_ignored() -> None:
    clock = PlaybackClock()
    clock.enqueue("a", 4800)
    clock.advance(1200)
    assert clock.clear() == 3600
    assert clock.empty
    assert clock.advance(480) == []  # the player's last frame after the clear counts for nothing
    assert clock.played_ms("a") == 50.0
    assert clock.enqueued_ms("a") == 200.0


def test_silence_played_beyond_the_queue_is_ignored() -> None:
    clock = PlaybackClock()
    clock.enqueue("a", 240)
    clock.advance(10_000)
    assert clock.played_samples("a") == 240


def test_truncate_position_guards() -> None:
    assert truncate_position_ms(1234.9, 5000) == 1234  # rounded down: a sample not heard is not claimed
    assert truncate_position_ms(6000, 5000) == 5000  # never past the item's audio
    assert truncate_position_ms(-3, 5000) == 0
    assert truncate_position_ms(700, None) == 700
