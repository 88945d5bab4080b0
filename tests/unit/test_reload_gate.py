"""The reload gate on its own: who waits, for how long, and when they go."""

from __future__ import annotations

import asyncio

from powerx.host.reload_gate import ReloadGate
from powerx.testing import wait_until_async


async def until_held(gate: ReloadGate, plugin: str, count: int) -> None:
    """Let the loop run until ``count`` requests to ``plugin`` wait at the gate."""
    await wait_until_async(
        lambda: gate.held(plugin), 5, 0, accept=lambda n: n >= count, what=f"{count} held"
    )


def test_no_reload_no_wait() -> None:
    async def scenario() -> float:
        return await ReloadGate().passage("p")

    assert asyncio.run(scenario()) == 0.0


def test_a_request_goes_when_the_last_of_nested_reloads_ends() -> None:
    async def scenario() -> list[str]:
        gate = ReloadGate()
        order: list[str] = []

        async def request() -> None:
            await gate.passage("p")
            order.append("request")

        with gate.reloading("p"):
            with gate.reloading("p"):
                waiting = asyncio.create_task(request())
                await until_held(gate, "p", 1)
                order.append("inner ends")
            assert gate.holding("p") and gate.held("p") == 1  # the outer reload still holds
            order.append("outer ends")
        assert not gate.holding("p")
        await waiting
        return order

    assert asyncio.run(scenario()) == ["inner ends", "outer ends", "request"]


def test_a_reload_of_one_plugin_does_not_hold_another() -> None:
    async def scenario() -> float:
        gate = ReloadGate()
        with gate.reloading("p"):
            return await gate.passage("q")

    assert asyncio.run(scenario()) == 0.0


def test_a_reload_that_never_ends_holds_for_at_most_the_bound() -> None:
    async def scenario() -> float:
        gate = ReloadGate(max_hold_s=0.1)
        with gate.reloading("p"):
            return await gate.passage("p")

    waited = asyncio.run(scenario())
    assert 90 <= waited < 2000


def test_the_gate_opens_even_when_the_reload_fails() -> None:
    async def scenario() -> float:
        gate = ReloadGate()

        async def failing_reload() -> None:
            with gate.reloading("p"):
                await asyncio.sleep(0.05)  # the reload's work, before it fails
                raise RuntimeError("start failed")

        reload = asyncio.create_task(failing_reload())
        await wait_until_async(lambda: gate.holding("p"), 5, 0, what="the reload to begin")
        waited = await gate.passage("p")
        assert isinstance(reload.exception(), RuntimeError)
        return waited

    assert 20 <= asyncio.run(scenario()) < 2000


def test_after_the_flip_requests_go_at_once_and_the_next_save_holds_again() -> None:
    async def scenario() -> tuple[float, float, bool]:
        gate = ReloadGate()
        with gate.reloading("p"):
            gate.expect("p")
            gate.flipped("p")  # the new generation serves; the bookkeeping goes on
            after_flip = await gate.passage("p")
            with gate.reloading("p"):  # the next save's reload
                waiting = asyncio.create_task(gate.passage("p"))
                await until_held(gate, "p", 1)
                held = not waiting.done()
            gate.settle("p")
        return after_flip, await waiting, held

    after_flip, next_wait, held = asyncio.run(scenario())
    assert after_flip == 0.0
    assert held and next_wait > 0


def test_the_flip_says_how_many_requests_it_let_through() -> None:
    async def scenario() -> tuple[int, int, int]:
        gate = ReloadGate()
        with gate.reloading("p"):
            nobody = gate.flipped("q")  # another plugin: nothing held there
            waiting = [asyncio.create_task(gate.passage("p")) for _ in range(2)]
            await until_held(gate, "p", 2)
            let_through = gate.flipped("p")
            await asyncio.gather(*waiting)
            again = gate.flipped("p")  # already open: nobody waits
        return nobody, let_through, again

    assert asyncio.run(scenario()) == (0, 2, 0)
