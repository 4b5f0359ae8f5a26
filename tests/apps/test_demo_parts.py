"""The demo's parts without sockets: when a turn is over (TurnWatcher), the demo sign-in, the page's routes (a user
reads only their own data; only the reviewer marks threads), the Azure upstream from the environment."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from aoai_realtime.apps.demo.caller import ProxyEndpoint, TurnWatcher
from aoai_realtime.apps.demo.routes import DemoInfo, demo_router
from aoai_realtime.apps.demo.stack import DemoError, azure_upstream
from aoai_realtime.apps.demo.users import DemoUsers
from aoai_realtime.apps.visit_script import parse_script
from aoai_realtime.auth import ApiKey
from aoai_realtime.protocol import events as ev


def audio_message(item_id: str) -> ev.Item:
    return ev.Item(type="message", id=item_id, role="assistant", content=[ev.ContentPart(type="output_audio")])


def test_a_turn_with_a_tool_ends_only_when_the_spoken_answer_after_the_tool_finished_playing() -> None:
    w = TurnWatcher()
    w.begin("When is the review?", spoken=True, now=10.0)
    feed = [
        (ev.InputAudioBufferSpeechStoppedEvent(audio_end_ms=900, item_id="u1"), 10.9),
        (ev.ResponseCreatedEvent(response=ev.Response(id="r1")), 11.0),
        (ev.ResponseFunctionCallArgumentsDoneEvent(response_id="r1", item_id="f1", output_index=0, call_id="c1",
                                                   arguments='{"query": "review"}', name="retrieve_knowledge"), 11.1),
        (ev.ResponseDoneEvent(response=ev.Response(id="r1", output=[ev.Item(type="function_call", call_id="c1")])),
         11.1),
        # The sideband answers the call; until its response comes, the turn is not over.
        (ev.ConversationItemAdded(item=ev.Item(type="function_call_output", call_id="c1", output="Thursday")), 11.3),
    ]  # fmt: skip
    for event, at in feed:
        w.feed(event, at)
        assert not w.done
    heard = ev.ConversationItemInputAudioTranscriptionCompletedEvent(
        item_id="u1", content_index=0, transcript="When is the review?", usage={}
    )
    w.feed(heard, 11.35)
    w.feed(ev.ResponseCreatedEvent(response=ev.Response(id="r2")), 11.4)
    w.feed(ev.OutputAudioBufferStarted(response_id="r2"), 11.7)
    w.feed(ev.ResponseAudioTranscriptDoneEvent(response_id="r2", item_id="a1", output_index=0, content_index=0,
                                               transcript="It is on Thursday."), 11.8)  # fmt: skip
    w.feed(ev.ResponseDoneEvent(response=ev.Response(id="r2", output=[audio_message("a1")])), 11.8)
    assert not w.done  # still playing
    w.feed(ev.OutputAudioBufferStopped(response_id="r2"), 13.0)
    assert w.done
    r = w.report
    assert (r.heard, r.reply) == ("When is the review?", "It is on Thursday.")
    assert [(t.name, t.output, t.ok) for t in r.tools] == [("retrieve_knowledge", "Thursday", True)]
    assert r.latency_ms == pytest.approx(800.0)  # end of speech (10.9) to first audio (11.7)
    assert r.latency_label == "end of speech -> first audio 800 ms"


def test_a_typed_turn_measures_from_sending_and_reports_a_failed_tool() -> None:
    w = TurnWatcher()
    w.begin("Hi", spoken=False, now=5.0)
    w.feed(ev.ResponseFunctionCallArgumentsDoneEvent(response_id="r1", item_id="f", output_index=0, call_id="c",
                                                     arguments="{}", name="save_insight"), 5.1)  # fmt: skip
    w.feed(ev.ConversationItemCreatedEvent(item=ev.Item(type="function_call_output", call_id="c",
                                                        output='{"error": {"type": "tool_error"}}')), 5.2)  # fmt: skip
    w.feed(ev.OutputAudioBufferStarted(response_id="r2"), 5.25)
    w.feed(ev.ResponseDoneEvent(response=ev.Response(id="r2", output=[audio_message("a")])), 5.3)
    assert not w.done
    w.feed(ev.OutputAudioBufferStopped(response_id="r2"), 6.0)
    assert w.done and not w.report.tools[0].ok
    assert w.report.latency_label == "text sent -> first audio 250 ms"


def test_the_proxy_endpoint_names_the_persona_in_the_offer_url() -> None:
    endpoint = ProxyEndpoint(kind="custom", base_url="http://127.0.0.1:8080/api", persona="visit")
    assert endpoint.calls_url == "http://127.0.0.1:8080/api/realtime/calls?persona=visit"


def test_the_demo_sign_in_maps_a_bearer_user_id_and_nothing_else() -> None:
    users = DemoUsers.default(frozenset({"capture"}))

    class Conn:
        def __init__(self, header: str) -> None:
            self.headers = {"authorization": header} if header else {}

    assert users.authenticate(Conn("Bearer ann")).id == "ann"  # type: ignore[arg-type, union-attr]
    for header in ("", "Bearer mallory", "Basic ann", "ann"):
        assert users.authenticate(Conn(header)) is None  # type: ignore[arg-type]


class FakeVisit:
    def __init__(self) -> None:
        self.reviews: list[tuple[str, str, str]] = []
        self.threads_of: list[str | None] = []

    async def threads(self, user_id: str | None = None) -> list[dict[str, Any]]:
        self.threads_of.append(user_id)
        return [{"thread_id": "t-ann", "subject_id": "ann"}]

    async def thread(self, thread_id: str) -> dict[str, Any] | None:
        return {"thread_id": thread_id, "subject_id": "ann"} if thread_id == "t-ann" else None

    async def mark_reviewed(self, thread_id: str, *, reviewer: str, notes: str = "") -> dict[str, Any]:
        self.reviews.append((thread_id, reviewer, notes))
        return {"thread_id": thread_id, "status": "reviewed"}

    async def visits(self, subject_id: str) -> list[dict[str, Any]]:
        return []


class FakeMemory:
    async def insights(self, user_id: str) -> list[dict[str, Any]]:
        return [{"text": f"fact of {user_id}"}]


@pytest.fixture
def visit() -> FakeVisit:
    return FakeVisit()


@pytest.fixture
async def client(visit: FakeVisit) -> Any:
    users = DemoUsers.default(frozenset({"visit"}))
    script = parse_script("id: s\ntitle: S\nquestions:\n  - id: q\n    text: How are you?\n")
    app = FastAPI()
    fakes: dict[str, Any] = {"memory": FakeMemory(), "visit": visit}
    app.include_router(demo_router(info=DemoInfo(upstream="u", brain="b"), users=users, script=script, agents=[],
                                   **fakes))  # fmt: skip
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://demo") as c:
        yield c


async def test_routes_show_a_user_only_their_own_data(client: httpx.AsyncClient, visit: FakeVisit) -> None:
    info = (await client.get("/api/demo/info")).json()
    assert [u["id"] for u in info["users"]] == ["ann", "bob", "rivera"] and info["script"]["questions"][0]["id"] == "q"
    assert (await client.get("/api/demo/memory/insights")).status_code == 401
    got = await client.get("/api/demo/memory/insights", headers={"Authorization": "Bearer bob"})
    assert got.json() == {"insights": [{"text": "fact of bob"}]}
    await client.get("/api/demo/visits/threads", headers={"Authorization": "Bearer bob"})
    await client.get("/api/demo/visits/threads", headers={"Authorization": "Bearer rivera"})
    assert visit.threads_of == ["bob", None]  # a subject lists their own threads, the reviewer every thread
    # Another subject's thread looks like no thread at all.
    thread = "/api/demo/visits/threads/t-ann"
    assert (await client.get(thread, headers={"Authorization": "Bearer bob"})).status_code == 404
    assert (await client.get(thread, headers={"Authorization": "Bearer ann"})).status_code == 200


async def test_only_the_reviewer_marks_a_thread_reviewed(client: httpx.AsyncClient, visit: FakeVisit) -> None:
    url = "/api/demo/visits/threads/t-ann/review"
    refused = await client.post(url, json={"notes": "x"}, headers={"Authorization": "Bearer ann"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_a_reviewer"
    ok = await client.post(url, json={"notes": "  all fine "}, headers={"Authorization": "Bearer rivera"})
    assert ok.json()["status"] == "reviewed"
    assert visit.reviews == [("t-ann", "Dr. Rivera", "all fine")]
    reviewer = {"Authorization": "Bearer rivera"}
    unknown = await client.post("/api/demo/visits/threads/nope/review", json={}, headers=reviewer)
    assert unknown.status_code == 404
    assert (await client.post(url, json={"notes": "x", "status": "open"},
                              headers={"Authorization": "Bearer rivera"})).status_code == 422  # fmt: skip


def test_azure_upstream_comes_from_the_environment_and_never_shows_the_key() -> None:
    assert azure_upstream({}) is None
    endpoint, auth, line = azure_upstream(
        {"AZURE_OPENAI_ENDPOINT": "https://my-res.openai.azure.com", "AZURE_OPENAI_API_KEY": "sekrit-key-123"}
    ) or (None, None, "")
    assert endpoint is not None and endpoint.base_url == "https://my-res.openai.azure.com/openai/v1"
    assert isinstance(auth, ApiKey) and "sekrit" not in line
    assert line == ("Azure OpenAI, deployment gpt-realtime at https://my-res.openai.azure.com/openai/v1 "
                    "(API key from AZURE_OPENAI_API_KEY)")  # fmt: skip
    with pytest.raises(DemoError, match="AZURE_OPENAI_ENDPOINT is not usable"):
        azure_upstream({"AZURE_OPENAI_ENDPOINT": "not a url", "AZURE_OPENAI_API_KEY": "k"})
