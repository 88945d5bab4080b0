"""Sessions of PowerX's dev hot-load protocol: what ``px-plugin dev --dev-api`` registers,
reloads and ends (its HTTP face is host/routes/dev.py).

A session binds one plugin folder to a reload token until it expires (``session_ttl_s``,
PowerX's 15 minutes by default) or is ended. Reloads are idempotent by ``X-Reload-Id``:
the first request with an id runs the reload; any later one with that id (the CLI sends
the same id again when it retries after a 5xx or a lost answer) gets the first answer
again, waiting for it if it is still being made, and never starts a second reload. One
live session per plugin, as PowerX allows one per plugin and tenant. Sessions starting,
reloading and ending are published on the event bus (``plugin.dev.session``), which the
protocol's SSE stream and the dashboard follow.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from powerx.bundling import BuildSession
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.observe import events

SessionStatus = Literal["active", "terminated", "expired"]
Publish = Callable[[str, dict[str, Any]], object]

# PowerX's event names on its stream (internal/service/dev_hotload/service.go).
STARTED = "SessionStarted"
RELOADED = "SessionReloaded"
TERMINATED = "SessionTerminated"

# Answers kept per session for X-Reload-Id replays. A CLI retries within seconds, so the
# last few hundred are plenty, and a long day of saves does not grow memory without end.
KEPT_ANSWERS = 256
# Ended sessions still answered by GET and listed; older ones are forgotten.
KEPT_ENDED = 100
_RELOAD_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass(frozen=True)
class ReloadAnswer:
    """The HTTP answer to one reload, given again for a request with the same id."""

    status: int
    body: dict[str, Any]
    media_type: str


@dataclass
class DevSession:
    id: str
    plugin_id: str
    version: str | None
    source_dir: Path
    reload_token: str
    created_at: float
    expires_at: float
    tenant: str
    tenant_id: int | None
    developer_id: int | None
    metadata: dict[str, Any]
    builder: BuildSession = field(repr=False)
    status: SessionStatus = "active"
    note: str = ""
    ended_at: float | None = None
    reloads: int = 0
    failed_reloads: int = 0
    last_reload_at: float | None = None
    last_build_ms: float | None = None
    build_ms_total: float = 0.0
    # One reload of a session at a time: its builder is not shared between threads.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    answers: OrderedDict[str, asyncio.Future[ReloadAnswer]] = field(
        default_factory=OrderedDict, repr=False
    )
    expiry: asyncio.TimerHandle | None = field(default=None, repr=False)

    def holds_token(self, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self.reload_token.encode())


def check_reload_id(raw: str | None) -> str:
    """The ``X-Reload-Id`` a request carries (one is made for a request without)."""
    if raw is None:
        return uuid.uuid4().hex
    if not _RELOAD_ID.fullmatch(raw):
        raise PowerXError(
            ErrorCode.DEV_RELOAD_ID_INVALID,
            f"X-Reload-Id {raw[:40]!r} is not a reload id.",
            "send 1 to 128 letters, digits or '.', '_', ':', '-' (px-plugin sends a UUID), "
            "or leave the header out.",
        )
    return raw


class DevSessions:
    def __init__(self, publish: Publish, ttl_s: float, build_root: Path) -> None:
        self._publish = publish
        self.ttl_s = ttl_s
        self._build_root = build_root
        self._sessions: dict[str, DevSession] = {}
        self._closing: set[asyncio.Task[None]] = set()

    # -- lifecycle -----------------------------------------------------------------------

    def register(
        self,
        plugin_id: str,
        source_dir: Path,
        *,
        version: str | None,
        tenant: str,
        tenant_id: int | None,
        developer_id: int | None,
        metadata: dict[str, Any],
    ) -> DevSession:
        """A new session for ``plugin_id`` served from ``source_dir`` (checked by the
        caller); refused while another live session has the plugin."""
        live = next((s for s in self.live() if s.plugin_id == plugin_id), None)
        if live is not None:
            raise PowerXError(
                ErrorCode.DEV_SESSION_CONFLICT,
                f"{plugin_id} already has a dev session ({live.id}).",
                f"end it first (`px-plugin dev --stop`, or DELETE "
                f"/internal/dev/plugins/register/{live.id}), or keep reloading through it.",
                status=409,
                details={"sessionId": live.id, "pluginId": plugin_id, "sessionStatus": live.status},
            )
        now = time.time()
        session = DevSession(
            id=str(uuid.uuid4()),
            plugin_id=plugin_id,
            version=version,
            source_dir=source_dir,
            reload_token=secrets.token_urlsafe(24),
            created_at=now,
            expires_at=now + self.ttl_s,
            tenant=tenant,
            tenant_id=tenant_id,
            developer_id=developer_id,
            metadata=metadata,
            builder=BuildSession(source_dir, self._build_root / plugin_id),
        )
        session.expiry = asyncio.get_running_loop().call_later(self.ttl_s, self._expire, session)
        self._sessions[session.id] = session
        self._event(
            STARTED,
            session,
            {
                "pluginId": plugin_id,
                "version": version,
                "tenant": tenant,
                "developerId": developer_id,
            },
        )
        return session

    def end(self, session: DevSession, note: str = "") -> None:
        """Ended by its developer (``DELETE .../register/{id}``); ending twice is fine."""
        if session.status == "active":
            self._finish(session, "terminated", note)

    def _expire(self, session: DevSession) -> None:
        if session.status == "active":
            self._finish(session, "expired", "expired")

    def _finish(self, session: DevSession, status: SessionStatus, note: str) -> None:
        session.status, session.note, session.ended_at = status, note, time.time()
        if session.expiry is not None:
            session.expiry.cancel()
        # The builder goes once a reload under way is done with it.
        task = asyncio.get_running_loop().create_task(self._close_builder(session))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        self._event(
            TERMINATED, session, {"pluginId": session.plugin_id, "note": note, "status": status}
        )
        ended = [s for s in self._sessions.values() if s.status != "active"]
        for old in ended[: max(0, len(ended) - KEPT_ENDED)]:
            del self._sessions[old.id]

    @staticmethod
    async def _close_builder(session: DevSession) -> None:
        async with session.lock:
            session.builder.close()

    async def close(self) -> None:
        """The simulator stops: timers off, builders (esbuild workers) closed."""
        for session in self._sessions.values():
            if session.expiry is not None:
                session.expiry.cancel()
            if session.status == "active":
                self._closing.add(asyncio.create_task(self._close_builder(session)))
        await asyncio.gather(*self._closing, return_exceptions=True)

    # -- lookups -------------------------------------------------------------------------

    def get(self, session_id: str) -> DevSession:
        try:
            uuid.UUID(session_id)
        except ValueError:
            raise PowerXError(
                ErrorCode.DEV_SESSION_ID_INVALID,
                f"{session_id[:60]!r} is not a session id.",
                "use the sessionId that POST /internal/dev/plugins/register answered.",
            ) from None
        session = self._sessions.get(session_id.lower())
        if session is None:
            raise PowerXError(
                ErrorCode.DEV_SESSION_NOT_FOUND,
                f"No dev session {session_id} is known here.",
                "register again (`px-plugin dev --watch --dev-api <simulator>`); sessions "
                "last until they expire, are ended, or the simulator stops.",
                status=404,
            )
        return session

    def live(self) -> list[DevSession]:
        self._expire_overdue()
        return [s for s in self._sessions.values() if s.status == "active"]

    def all(self) -> list[DevSession]:
        self._expire_overdue()
        return list(self._sessions.values())

    def holding(self, token: str) -> DevSession | None:
        """The live session whose reload token ``token`` is, if any."""
        return next((s for s in self.live() if s.holds_token(token)), None)

    def _expire_overdue(self) -> None:
        """A timer that has not fired yet (a busy loop) does not keep a session alive."""
        now = time.time()
        for session in list(self._sessions.values()):
            if session.status == "active" and now >= session.expires_at:
                self._expire(session)

    def check_live(self, session: DevSession) -> None:
        """Refuse a reload through a session that expired or was ended (410)."""
        self._expire_overdue()
        if session.status == "expired":
            raise PowerXError(
                ErrorCode.DEV_SESSION_EXPIRED,
                f"Dev session {session.id} of {session.plugin_id} expired "
                f"{time.time() - session.expires_at:.0f} s ago; its reload token no longer works.",
                "register again: restart `px-plugin dev --watch`, which registers a new "
                "session (dev_hotload.session_ttl_s sets how long one lasts).",
                status=410,
                details={"sessionId": session.id, "expiresAt": session.expires_at},
            )
        if session.status == "terminated":
            raise PowerXError(
                ErrorCode.DEV_SESSION_ENDED,
                f"Dev session {session.id} of {session.plugin_id} was ended.",
                "register a new session: restart `px-plugin dev --watch`.",
                status=410,
                details={"sessionId": session.id},
            )

    # -- reloads -------------------------------------------------------------------------

    async def answer_once(
        self,
        session: DevSession,
        reload_id: str,
        reload: Callable[[], Awaitable[ReloadAnswer]],
    ) -> tuple[ReloadAnswer, bool]:
        """The answer to reload ``reload_id`` of ``session``, and whether it was given
        before: a known id gets its first answer again (awaited if still being made); a
        new one, if the session is live, runs ``reload`` (one at a time per session)."""
        known = session.answers.get(reload_id)
        if known is not None:
            return await asyncio.shield(known), True
        self.check_live(session)
        made: asyncio.Future[ReloadAnswer] = asyncio.get_running_loop().create_future()
        session.answers[reload_id] = made
        while len(session.answers) > KEPT_ANSWERS:
            session.answers.popitem(last=False)
        try:
            async with session.lock:
                answer = await reload()
        except BaseException as error:
            # Not an answer (a bug, a cancelled request): a retry with this id runs anew.
            session.answers.pop(reload_id, None)
            if isinstance(error, Exception):
                made.set_exception(error)
                made.exception()  # those waiting get it; nobody else has to retrieve it
            else:
                made.cancel()
            raise
        made.set_result(answer)
        return answer, False

    def reloaded(
        self, session: DevSession, ok: bool, build_ms: float | None, payload: dict[str, Any]
    ) -> None:
        """Count a reload of ``session`` and publish it."""
        session.reloads += 1
        session.failed_reloads += 0 if ok else 1
        session.last_reload_at = time.time()
        if build_ms is not None:
            session.last_build_ms = build_ms
            session.build_ms_total += build_ms
        self._event(RELOADED, session, {"pluginId": session.plugin_id, "success": ok, **payload})

    def _event(self, kind: str, session: DevSession, payload: dict[str, Any]) -> None:
        self._publish(
            events.DEV_SESSION,
            {
                "plugin": session.plugin_id,
                "type": kind,
                "sessionId": session.id,
                "payload": payload,
            },
        )
