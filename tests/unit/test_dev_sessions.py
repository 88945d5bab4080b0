"""Dev hot-load sessions on their own: one live session per plugin, reload ids answered
once, expiry, and what is published (host/dev_sessions.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from powerx.errors import PowerXError
from powerx.host.dev_sessions import (
    KEPT_ANSWERS,
    DevSession,
    DevSessions,
    ReloadAnswer,
    check_reload_id,
)
from powerx.testing import wait_until_async

Published = list[tuple[str, dict[str, Any]]]


def sessions(tmp_path: Path, published: Published, ttl_s: float = 900.0) -> DevSessions:
    return DevSessions(lambda kind, data: published.append((kind, data)), ttl_s, tmp_path)


def register(registry: DevSessions, tmp_path: Path, plugin: str = "com.test.p") -> DevSession:
    return registry.register(
        plugin,
        tmp_path,
        version="1.0.0",
        tenant="acme",
        tenant_id=None,
        developer_id=None,
        metadata={},
    )


def test_one_live_session_per_plugin(tmp_path: Path) -> None:
    async def scenario() -> None:
        registry = sessions(tmp_path, [])
        first = register(registry, tmp_path)
        with pytest.raises(PowerXError) as refused:
            register(registry, tmp_path)
        assert refused.value.code == "dev_session_conflict" and refused.value.status == 409
        assert refused.value.details["sessionId"] == first.id
        register(registry, tmp_path, "com.test.other")  # another plugin is fine
        registry.end(first, "done")
        register(registry, tmp_path)  # so is the same plugin once the first has ended
        await registry.close()

    asyncio.run(scenario())


def test_a_reload_id_runs_once_and_its_answer_is_given_again(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[bool], int]:
        registry = sessions(tmp_path, [])
        session = register(registry, tmp_path)
        runs = 0
        release = asyncio.Event()

        async def reload() -> ReloadAnswer:
            nonlocal runs
            runs += 1
            await release.wait()
            return ReloadAnswer(200, {"generation": 1 + runs}, "application/json")

        # The second arrives while the first still runs: it waits for the same answer.
        first = asyncio.create_task(registry.answer_once(session, "id-1", reload))
        second = asyncio.create_task(registry.answer_once(session, "id-1", reload))
        await asyncio.sleep(0)
        release.set()
        answers = [await first, await second]
        third = await registry.answer_once(session, "id-1", reload)
        assert [a.body for a, _ in [*answers, third]] == [{"generation": 2}] * 3
        await registry.answer_once(session, "id-2", reload)
        await registry.close()
        return [replayed for _, replayed in [*answers, third]], runs

    replayed, runs = asyncio.run(scenario())
    assert replayed == [False, True, True]
    assert runs == 2  # id-1 once, id-2 once


def test_a_reload_that_did_not_answer_may_be_tried_again(tmp_path: Path) -> None:
    async def scenario() -> int:
        registry = sessions(tmp_path, [])
        session = register(registry, tmp_path)
        attempts = 0

        async def reload() -> ReloadAnswer:
            nonlocal attempts
            attempts += 1
            if attempts == 1:
                raise OSError("disk full")
            return ReloadAnswer(200, {}, "application/json")

        with pytest.raises(OSError):
            await registry.answer_once(session, "id", reload)
        _, replayed = await registry.answer_once(session, "id", reload)
        assert not replayed
        await registry.close()
        return attempts

    assert asyncio.run(scenario()) == 2


def test_answers_kept_are_bounded(tmp_path: Path) -> None:
    async def scenario() -> int:
        registry = sessions(tmp_path, [])
        session = register(registry, tmp_path)

        async def reload() -> ReloadAnswer:
            return ReloadAnswer(200, {}, "application/json")

        for n in range(KEPT_ANSWERS + 10):
            await registry.answer_once(session, f"id-{n}", reload)
        await registry.close()
        return len(session.answers)

    assert asyncio.run(scenario()) == KEPT_ANSWERS


def test_an_expired_or_ended_session_refuses_new_reloads(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        published: Published = []
        registry = sessions(tmp_path, published)
        expiring = register(registry, tmp_path)
        expiring.expires_at = time.time() - 1  # its timer has not fired yet
        codes = []
        for session in (expiring, register(registry, tmp_path, "com.test.ended")):
            if session is not expiring:
                registry.end(session, "bye")

            async def reload() -> ReloadAnswer:
                raise AssertionError("a refused session must not reload")

            with pytest.raises(PowerXError) as refused:
                await registry.answer_once(session, "id", reload)
            assert refused.value.status == 410
            codes.append(refused.value.code)
        assert expiring.status == "expired"
        ends = [d for _, d in published if d["type"] == "SessionTerminated"]
        assert [e["payload"]["status"] for e in ends] == ["expired", "terminated"]
        await registry.close()
        return codes

    assert asyncio.run(scenario()) == ["dev_session_expired", "dev_session_ended"]


def test_the_expiry_timer_ends_a_session_and_says_so(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        published: Published = []
        registry = sessions(tmp_path, published, ttl_s=0.01)
        session = register(registry, tmp_path)
        await wait_until_async(
            lambda: session.status, 5, 0.005, accept=lambda s: s != "active", what="the expiry"
        )
        await registry.close()
        return [data["type"] for _, data in published]

    assert asyncio.run(scenario()) == ["SessionStarted", "SessionTerminated"]


def test_lookups_name_what_is_wrong(tmp_path: Path) -> None:
    async def scenario() -> None:
        registry = sessions(tmp_path, [])
        session = register(registry, tmp_path)
        assert registry.get(session.id) is session
        assert registry.get(session.id.upper()) is session
        assert registry.holding(session.reload_token) is session
        assert registry.holding("other") is None
        for raw in ("nope", "12345", "../../etc"):
            with pytest.raises(PowerXError) as wrong:
                registry.get(raw)
            assert wrong.value.code == "dev_session_id_invalid"
        with pytest.raises(PowerXError) as unknown:
            registry.get("00000000-0000-4000-8000-000000000000")
        assert (unknown.value.code, unknown.value.status) == ("dev_session_not_found", 404)
        await registry.close()

    asyncio.run(scenario())


def test_reload_ids() -> None:
    assert check_reload_id("0d9e7c1c-6a3b-4b7e-9a51-6f7f4e3b2a10") == (
        "0d9e7c1c-6a3b-4b7e-9a51-6f7f4e3b2a10"
    )
    assert len(check_reload_id(None)) == 32  # made for a request without one
    for bad in ("", "with space", "x" * 129, "ünïcode", "a/b"):
        with pytest.raises(PowerXError) as refused:
            check_reload_id(bad)
        assert refused.value.code == "dev_reload_id_invalid"
