"""The offline provider: its summary is extractive markdown, and its action items always validate."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from aoai_realtime.llm import ActionItem, ActionItems, LocalLLM, Turn, parse_action_items

CALL = (
    Turn("user", "Hi. I need to renew my passport before the trip to Lisbon."),
    Turn("assistant", "I'll look up the consulate hours tomorrow. Can you send me a photo of the old passport?"),
    Turn("user", "Sure. Maria will book the appointment by Friday, it is urgent."),
    Turn("assistant", "Tell me more about the trip?"),
    Turn("user", "We should pack the adapters at some point."),
)


async def test_action_items_name_owner_due_and_priority() -> None:
    items = (await LocalLLM().extract_action_items(CALL)).action_items
    assert items == [
        ActionItem("Renew my passport before the trip to Lisbon", owner="user", due=None, priority="medium"),
        ActionItem("Look up the consulate hours tomorrow", owner="assistant", due="tomorrow", priority="medium"),
        ActionItem("Send me a photo of the old passport", owner="user", due=None, priority="medium"),
        ActionItem("Book the appointment by Friday, it is urgent", owner="Maria", due="Friday", priority="high"),
        ActionItem("Pack the adapters at some point", owner=None, due=None, priority="low"),
    ]


async def test_summary_is_markdown_built_from_call_sentences() -> None:
    text = await LocalLLM(max_sentences=2).summarize(CALL)
    assert text.startswith("## Summary\n")
    bullets = [line for line in text.splitlines() if line.startswith("- **")]
    assert len(bullets) == 2
    sentences = {s.strip() for t in CALL for s in t.text.replace("?", ".").split(".")}
    for b in bullets:  # extractive: every bullet is a sentence of the call, attributed to its speaker
        role, sentence = b.removeprefix("- **").split("**: ", 1)
        assert role in {"user", "assistant"} and sentence.rstrip(".?") in sentences
    assert "- user: 3 turns" in text and "- assistant: 2 turns" in text


async def test_empty_call() -> None:
    llm = LocalLLM()
    assert "no content" in await llm.summarize([])
    assert (await llm.extract_action_items([])).action_items == []


@given(st.lists(st.tuples(st.sampled_from(["user", "assistant", "Bob"]), st.text(max_size=300)), max_size=8))
def test_action_items_always_validate(turns: list[tuple[str, str]]) -> None:
    transcript = [Turn(r, t) for r, t in turns]
    items = LocalLLM().extract_action_items_sync(transcript)
    # Round-trip through the strict decoder: the result satisfies every constraint of the schema.
    assert parse_action_items(msgspec.json.encode(items)) == items
    LocalLLM().summarize_sync(transcript)


@given(st.text(alphabet="I'll can you please we need to fix the thing by Monday asap. ", max_size=2000))
def test_long_commitments_are_cut_to_schema_limits(text: str) -> None:
    items = LocalLLM().extract_action_items_sync([Turn("user", text), Turn("assistant", text)])
    assert isinstance(items, ActionItems)
    assert parse_action_items(msgspec.json.encode(items)) == items
