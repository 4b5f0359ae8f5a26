"""The demo page's own routes (``/api/demo``): what it shows beside a call.

- ``GET /info``: which voice service and brain answer, the demo users, the agents and their personas, the
  Visit Agent's question script.
- ``GET /memory/insights|graph|sessions``, ``GET /memory/sessions/{call_id}``: the signed-in user's Memory Agent
  data, never another user's.
- ``GET /visits/threads``, ``GET /visits/threads/{id}``, ``POST /visits/threads/{id}/review``: the Visit Agent's
  review threads. The reviewer sees every thread and marks them reviewed; a subject sees only their own visits.

Per-call tool activity and per-turn latency are not here: the page reads them from the call's data channel.
Every route needs the demo sign-in header (:mod:`.users`); errors have the server's shape
``{"error": {"code", "message"}}``.
"""

# No "from __future__ import annotations": FastAPI reads the route signatures at runtime.
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ...server.personas import User
from ..memory_agent import MemoryAgent
from ..visit_agent import VisitAgent
from ..visit_script import VisitScript
from .users import REVIEWER_ROLE, DemoUsers

__all__ = ["DemoInfo", "demo_router"]

_NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True, kw_only=True)
class DemoInfo:
    """What the page says at the top: which voice service answers (``upstream``) and which brain."""

    upstream: str
    brain: str


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    notes: str = Field(default="", max_length=4000, description="the reviewer's notes")


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=_NO_STORE)


def _ok(body: Any) -> JSONResponse:
    return JSONResponse(body, headers=_NO_STORE)


def demo_router(
    *,
    info: DemoInfo,
    users: DemoUsers,
    memory: MemoryAgent,
    visit: VisitAgent,
    script: VisitScript,
    agents: list[dict[str, Any]],
) -> APIRouter:
    """The ``/api/demo`` router over the two agents. ``agents`` is the page's list of agents and personas."""
    router = APIRouter(prefix="/api/demo", tags=["demo"])

    def signed_in(request: Request) -> User | None:
        return users.authenticate(request)

    SignedIn = Annotated[User | None, Depends(signed_in)]

    def need(user: User | None) -> User:
        if user is None:
            raise _Refused(401, "unauthorized", "pick a demo user first (Authorization: Bearer <user id>)")
        return user

    async def visible_thread(user: User, thread_id: str) -> dict[str, Any]:
        thread = await visit.thread(thread_id)
        # Someone else's thread looks the same as no thread: the reply does not reveal which visits exist.
        if thread is None or (user.role != REVIEWER_ROLE and thread.get("subject_id") != user.id):
            raise _Refused(404, "not_found", "no such review thread")
        return thread

    async def guarded(work: Any) -> JSONResponse:
        try:
            return _ok(await work)
        except _Refused as exc:
            return _error(exc.status, exc.code, exc.message)

    @router.get("/info")
    async def get_info() -> JSONResponse:
        """Upstream and brain, users, agents and personas, the question script. No sign-in needed."""
        questions = [{"id": q.id, "text": q.text, "required": q.required} for q in script.questions]
        return _ok({
            "upstream": info.upstream,
            "brain": info.brain,
            "users": users.describe(),
            "agents": agents,
            "script": {"id": script.id, "title": script.title, "questions": questions},
        })  # fmt: skip

    @router.get("/memory/insights")
    async def insights(user: SignedIn) -> JSONResponse:
        async def work() -> Any:
            return {"insights": await memory.insights(need(user).id)}

        return await guarded(work())

    @router.get("/memory/graph")
    async def graph(user: SignedIn) -> JSONResponse:
        async def work() -> Any:
            return await memory.graph(need(user).id)

        return await guarded(work())

    @router.get("/memory/sessions")
    async def sessions(user: SignedIn) -> JSONResponse:
        async def work() -> Any:
            return {"sessions": await memory.sessions(need(user).id)}

        return await guarded(work())

    @router.get("/memory/sessions/{call_id}")
    async def session(call_id: Annotated[str, Path(max_length=128)], user: SignedIn) -> JSONResponse:
        async def work() -> Any:
            found = await memory.session(need(user).id, call_id)
            if found is None:
                raise _Refused(404, "not_found", "no such session of yours")
            return found

        return await guarded(work())

    @router.get("/visits/threads")
    async def threads(user: SignedIn) -> JSONResponse:
        async def work() -> Any:
            who = need(user)
            return {"threads": await visit.threads(None if who.role == REVIEWER_ROLE else who.id)}

        return await guarded(work())

    @router.get("/visits/threads/{thread_id}")
    async def thread(thread_id: Annotated[str, Path(max_length=128)], user: SignedIn) -> JSONResponse:
        async def work() -> Any:
            return await visible_thread(need(user), thread_id)

        return await guarded(work())

    @router.post("/visits/threads/{thread_id}/review")
    async def review(
        thread_id: Annotated[str, Path(max_length=128)], body: ReviewRequest, user: SignedIn
    ) -> JSONResponse:
        async def work() -> Any:
            who = need(user)
            if who.role != REVIEWER_ROLE:
                raise _Refused(403, "not_a_reviewer", "only a reviewer marks visits reviewed; pick Dr. Rivera")
            await visible_thread(who, thread_id)
            return await visit.mark_reviewed(thread_id, reviewer=who.name or who.id, notes=body.notes.strip())

        return await guarded(work())

    @router.get("/visits/history")
    async def history(user: SignedIn) -> JSONResponse:
        async def work() -> Any:
            return {"visits": await visit.visits(need(user).id)}

        return await guarded(work())

    return router
