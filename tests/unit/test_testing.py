"""`powerx.testing` on its own: its one way to wait (poll a real condition; on a timeout
say what was awaited and what was seen last) and the environment its simulators run in."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from powerx.testing import WaitTimeout, isolated_env, wait_until, wait_until_async, wait_until_up


def test_it_returns_the_first_answer_that_is_accepted() -> None:
    counter = itertools.count()
    assert wait_until(lambda: next(counter) >= 3, interval_s=0) is True
    answers = iter([[], [], ["ready"]])
    assert wait_until(lambda: next(answers), interval_s=0) == ["ready"]
    levels = iter([1, 5, 9])
    assert wait_until(lambda: next(levels), interval_s=0, accept=lambda n: n > 4) == 5


def test_a_timeout_names_what_was_awaited_and_the_last_answer() -> None:
    states = itertools.count()
    with pytest.raises(WaitTimeout) as raised:
        wait_until(
            lambda: {"generation": next(states)},
            0.05,
            0.01,
            accept=lambda s: False,
            what="generation 99",
        )
    message = str(raised.value)
    assert message.startswith("timed out after 0.05 s waiting for generation 99;")
    assert f"last value seen: {raised.value.last!r}" in message
    last = raised.value.last
    assert isinstance(last, dict) and last["generation"] >= 1  # polled again, not once
    assert isinstance(raised.value, AssertionError)  # a test that times out fails


def test_without_a_name_a_timeout_shows_the_check_itself() -> None:
    def plugin_is_serving() -> bool:
        return False

    with pytest.raises(
        WaitTimeout, match=r"waiting for .*plugin_is_serving; last value seen: False"
    ):
        wait_until(plugin_is_serving, 0.02, 0.01)
    with pytest.raises(WaitTimeout, match=r"waiting for .*lambda: 1 \+ 1 == 3"):
        wait_until(lambda: 1 + 1 == 3, 0.02, 0.01)


def test_a_long_last_answer_is_cut_in_the_middle() -> None:
    log = "first line\n" + "x" * 50_000 + "\nlast line"
    with pytest.raises(WaitTimeout) as raised:
        wait_until(lambda: log, 0.02, 0.01, accept=lambda text: "ready" in text, what="ready")
    message = str(raised.value)
    assert "first line" in message and "last line" in message
    assert len(message) < 3000
    assert raised.value.last == log  # the whole of it stays on the exception


def test_the_async_face_lets_the_loop_run_between_two_checks() -> None:
    async def scenario() -> list[str]:
        seen: list[str] = []

        async def producer() -> None:
            for word in ("a", "b", "c"):
                await asyncio.sleep(0)
                seen.append(word)

        task = asyncio.create_task(producer())
        found = await wait_until_async(lambda: seen, interval_s=0, accept=lambda s: len(s) == 3)
        await task
        return found

    assert asyncio.run(scenario()) == ["a", "b", "c"]


def test_the_async_face_times_out_the_same_way() -> None:
    async def scenario() -> None:
        await wait_until_async(lambda: 0, 0.02, 0.005, what="a request held at the gate")

    with pytest.raises(
        WaitTimeout, match="waiting for a request held at the gate; last value seen: 0"
    ):
        asyncio.run(scenario())


def test_waiting_for_a_simulator_that_exited_says_so_with_its_output(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"], text=True)
    process.wait()
    with pytest.raises(RuntimeError, match="the simulator exited with 3:\nits output"):
        wait_until_up(process, tmp_path, 5, lambda: "its output")


def test_an_isolated_environment_drops_your_own_login_and_state(tmp_path: Path) -> None:
    mine = {"PATH": "/usr/bin", "POWERX_STATE_DIR": "/home/me/.powerx", "PX_TOKEN": "secret"}
    env = isolated_env(tmp_path, mine)
    assert env["PATH"] == "/usr/bin" and "PX_TOKEN" not in env
    assert env["POWERX_STATE_DIR"] == str(tmp_path / "state")
    assert env["POWERX_CONFIG_HOME"] == str(tmp_path / "config-home")
