"""The hand-written JSON schema sent to Azure and the msgspec types that validate answers agree."""

from __future__ import annotations

import json

import pytest

from aoai_realtime.llm import ACTION_ITEMS_SCHEMA, LLMOutputError, parse_action_items

VALID = {"action_items": [{"description": "Call Bob", "owner": None, "due": "Monday", "priority": "high"}]}

INVALID = [
    ("not json", "not valid JSON"),
    (json.dumps({"items": []}), "unknown field `items`"),
    (json.dumps({}), "missing required field `action_items`"),
    (json.dumps({"action_items": [{"description": "", "owner": None, "due": None, "priority": "low"}]}),
     "description"),
    (json.dumps({"action_items": [{"description": "x", "owner": None, "due": None, "priority": "urgent"}]}),
     "priority"),
    (json.dumps({"action_items": [{"description": "x", "owner": None, "priority": "low"}]}), "due"),
    (json.dumps({"action_items": [{"description": "x", "owner": 3, "due": None, "priority": "low"}]}), "owner"),
    (json.dumps({**VALID, "extra": 1}), "extra"),
]


def test_valid_answer_parses() -> None:
    items = parse_action_items(json.dumps(VALID))
    assert items.action_items[0].description == "Call Bob" and items.action_items[0].priority == "high"


@pytest.mark.parametrize(("text", "names"), INVALID)
def test_invalid_answers_fail_with_the_reason(text: str, names: str) -> None:
    with pytest.raises(LLMOutputError, match=names):
        parse_action_items(text)


@pytest.mark.parametrize(("text", "names"), [(json.dumps(VALID), ""), *INVALID[1:]])
def test_schema_agrees_with_decoder(text: str, names: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema_ok = jsonschema.Draft202012Validator(ACTION_ITEMS_SCHEMA).is_valid(json.loads(text))
    try:
        parse_action_items(text)
        decoder_ok = True
    except LLMOutputError:
        decoder_ok = False
    assert schema_ok == decoder_ok


def test_schema_is_strict_mode_compatible() -> None:
    # Structured outputs in strict mode: every object closes its properties and requires all of them.
    def objects(node: object) -> list[dict[str, object]]:
        if isinstance(node, dict):
            found = [node] if node.get("type") == "object" else []
            return found + [o for v in node.values() for o in objects(v)]
        return []

    for obj in objects(ACTION_ITEMS_SCHEMA):
        assert obj["additionalProperties"] is False
        assert sorted(obj["required"]) == sorted(obj["properties"])  # type: ignore[arg-type]
