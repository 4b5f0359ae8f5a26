"""The session switch of a :class:`~aoai_realtime.agents.voice.VoiceAssistant`: rollover to a fresh session before
the old one's limit (policy and seed in :mod:`.rollover`), and re-seeding a session the client reconnected to.

It owns when to switch (the deadline, from ``expires_at`` or the policy, on the assistant's clock), the seeding
(instructions, tools, earlier turns; it waits until the new session has acknowledged every item) and the silence
boundary. The switch itself (detach the old client, attach the new one) is the assistant's
(``VoiceAssistant._switch_to``). A failure here (the new session cannot be reached, never acknowledges its seed)
is raised in the assistant's task and so fails the assistant: it is not logged and forgotten.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..errors import ConnectionClosed, SessionExpired, get_logger
from .rollover import RolloverPolicy, Seed, build_seed

if TYPE_CHECKING:
    from ..client import RealtimeClient
    from .voice import VoiceAssistant

__all__ = ["Switchover"]

log = get_logger(__name__)

SEED_ACK_TIMEOUT_S = 10.0


class Switchover:
    """Rollover and re-seeding for ``assistant``; ``policy`` is its :class:`RolloverPolicy` (``None``: only
    re-seeding after a reconnect, with the default policy's seed)."""

    def __init__(self, assistant: VoiceAssistant, policy: RolloverPolicy | None) -> None:
        self._assistant = assistant
        self.policy = policy
        self.session_started = 0.0
        self.rolling = False
        self.old_session_gone = asyncio.Event()
        self.rollovers = 0

    def deadline(self) -> float:
        """When (on the assistant's clock) to start switching: before the limit by the policy's margin, never
        before half the session's life."""
        policy = self.policy
        assert policy is not None
        a = self._assistant
        limit = policy.max_session_s
        expires = a.client.session.get("expires_at")
        if policy.use_expires_at and isinstance(expires, int | float) and expires > 0:
            # expires_at is wall-clock Unix time: how long is left, plus how long the session has run
            limit = min(limit, max(0.0, expires - a.clock.wall()) + (a.clock.now() - self.session_started))
        return self.session_started + max(limit - policy.margin_s, limit / 2)

    async def monitor(self) -> None:
        """Roll over at every deadline, for ever (one of the assistant's tasks)."""
        clock = self._assistant.clock
        while True:
            await clock.sleep(max(0.0, self.deadline() - clock.now()))
            await self.roll_over(boundary=True)

    async def watch(self, client: RealtimeClient) -> None:
        """Notice the end of ``client``'s session (one of the assistant's tasks): roll over at once on expiry when
        there is a rollover policy, else report it to the assistant (``error`` state and callbacks)."""
        a = self._assistant
        try:
            async for _ in client.events():
                pass
        except SessionExpired as exc:
            if a._client is client and self.policy is not None:
                if self.rolling:
                    self.old_session_gone.set()  # a planned rollover is waiting for silence: switch now
                else:
                    await self.roll_over(boundary=False)
                return
            a._session_ended(exc)
        except ConnectionClosed as exc:
            if a._client is client:
                a._session_ended(exc)

    async def roll_over(self, *, boundary: bool) -> None:
        a = self._assistant
        policy = self.policy
        if policy is None or a.connect_factory is None or self.rolling:
            return
        self.rolling = True
        self.old_session_gone = asyncio.Event()
        try:
            seed = await build_seed(a.core.transcript.entries(), instructions=self._base_instructions(),
                                    policy=policy)
            new = a.connect_factory()
            await new.connect()
            await self.seed(new, seed)
            if boundary:
                await self._silence_boundary(policy.boundary_timeout_s)
            old = a._switch_to(new)
            self.rollovers += 1
            a.notifier.emit("rollover", new)
            a.notifier.publish("rollover", {"rollovers": self.rollovers})
            try:
                await old.close()
            except Exception as exc:  # noqa: BLE001  # the switch is done; the old session is gone either way
                log.warning("rollover: closing the old session failed (%s); continuing on the new one", exc)
        finally:
            self.rolling = False

    def _base_instructions(self) -> str:
        a = self._assistant
        if a.instructions is not None:
            return a.instructions
        value = a.client.session.get("instructions")
        return value if isinstance(value, str) else ""

    async def seed(self, client: RealtimeClient, seed: Seed) -> None:
        """Give ``client``'s (new) session the instructions, tools and earlier turns; wait until it has them."""
        acked = 0
        all_acked = asyncio.Event()
        if not seed.items:
            all_acked.set()

        def ack(event: Any) -> None:
            nonlocal acked
            acked += 1
            if acked >= len(seed.items):
                all_acked.set()

        client.on("conversation.item.added", ack)  # before sending: the acks may come back at once
        try:
            update = self._assistant._session_update(seed.instructions or None)
            if update:
                await client.update_session(update)
            for item in seed.items:
                await client.create_item(item)
            await asyncio.wait_for(all_acked.wait(), SEED_ACK_TIMEOUT_S)
        finally:
            client.off("conversation.item.added", ack)

    async def reseed(self, client: RealtimeClient) -> None:
        """The client reconnected by itself to a new, empty session: give it the conversation so far."""
        a = self._assistant
        seed = await build_seed(a.core.transcript.entries(), instructions=self._base_instructions(),
                                policy=self.policy or RolloverPolicy())
        a.core.expect_seed([(str(i.role), i.transcript) for i in seed.items])
        await self.seed(client, seed)
        a.notifier.emit("rollover", client)

    async def _silence_boundary(self, timeout: float) -> None:
        # the next silence, unless the old session ends first (then there is nothing to wait for)
        idle = asyncio.ensure_future(self._assistant.wait_until_idle(timeout))
        gone = asyncio.ensure_future(self.old_session_gone.wait())
        try:
            await asyncio.wait({idle, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (idle, gone):
                task.cancel()
            await asyncio.gather(idle, gone, return_exceptions=True)
