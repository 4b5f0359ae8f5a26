"""The demo's users and its auth hook: a header names a user from a fixed table (loopback-only demo).

The page sends ``Authorization: Bearer <user id>`` on every request (the browser client's ``headers`` option);
the headless client sends the same through :class:`~aoai_realtime.auth.EphemeralToken`. This is a demo sign-in
for one machine, not authentication: anyone who can reach the port can be any demo user, which is why the demo
binds 127.0.0.1 unless told otherwise. A real deployment passes its own hook to
:class:`~aoai_realtime.server.RealtimeServer` (see ``docs/demo.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from ...server.personas import User

__all__ = ["REVIEWER_ROLE", "DemoUsers"]

REVIEWER_ROLE = "reviewer"


@dataclass(frozen=True)
class DemoUsers:
    """The demo's users by id. Subjects (``ann``, ``bob``) may call every persona; the reviewer reads and marks
    every visit's review thread and places no calls."""

    users: tuple[User, ...]

    @classmethod
    def default(cls, personas: frozenset[str]) -> DemoUsers:
        return cls(
            (
                User(id="ann", name="Ann", role="product manager", personas=personas),
                User(id="bob", name="Bob", role="field engineer", personas=personas),
                User(id="rivera", name="Dr. Rivera", role=REVIEWER_ROLE, personas=frozenset()),
            )
        )

    def get(self, user_id: str) -> User | None:
        return next((u for u in self.users if u.id == user_id), None)

    def authenticate(self, request: HTTPConnection) -> User | None:
        """The auth hook: ``Authorization: Bearer <user id>`` -> that user, anything else -> None (401)."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.get(value.strip())

    def describe(self) -> list[dict[str, object]]:
        """The users as the page lists them."""
        return [
            {"id": u.id, "name": u.name, "role": u.role, "reviewer": u.role == REVIEWER_ROLE,
             "personas": sorted(u.personas)}
            for u in self.users
        ]  # fmt: skip
