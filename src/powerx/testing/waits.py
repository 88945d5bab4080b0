"""Wait for a real condition by polling it, never for a guessed time; a wait that gives up
says what it waited for and the last value it saw."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A wait that gave up: what it waited for, for how long, and the last value it saw.

    An ``AssertionError``, so a test that times out fails (not errors) with that message."""

    def __init__(self, what: str, timeout_s: float, last: object) -> None:
        super().__init__(
            f"timed out after {timeout_s:g} s waiting for {what}; last value seen: {_shown(last)}"
        )
        self.what = what
        self.timeout_s = timeout_s
        self.last = last


def wait_until(
    check: Callable[[], T],
    timeout_s: float = 10.0,
    interval_s: float = 0.02,
    *,
    accept: Callable[[T], object] = bool,
    what: str | None = None,
) -> T:
    """Call ``check`` every ``interval_s`` until ``accept`` takes its answer (by default:
    until the answer is true), and return that answer.

    After ``timeout_s`` it raises :class:`WaitTimeout` (an ``AssertionError``) naming
    ``what`` was awaited (default: ``check``'s name, or a lambda's source line) and the
    last answer, so a failure says what the test waited for and what it saw instead.
    ``assert wait_until(...)`` keeps working, but a message after it never shows: have
    ``check`` return what you want to see (and ``accept`` judge it), or say it in ``what``."""
    poll = _Poll(check, timeout_s, accept, what)
    while True:
        accepted, value = poll.once()
        if accepted:
            return value
        time.sleep(interval_s)


async def wait_until_async(
    check: Callable[[], T],
    timeout_s: float = 10.0,
    interval_s: float = 0.02,
    *,
    accept: Callable[[T], object] = bool,
    what: str | None = None,
) -> T:
    """:func:`wait_until` for code on an event loop: between two calls of ``check`` (which
    must not block) the loop runs; ``interval_s=0`` only lets the loop's ready tasks run.
    A check that blocks (an HTTP call, a subprocess) belongs in
    ``await asyncio.to_thread(wait_until, check, ...)`` instead."""
    poll = _Poll(check, timeout_s, accept, what)
    while True:
        accepted, value = poll.once()
        if accepted:
            return value
        await asyncio.sleep(interval_s)


class _Poll(Generic[T]):
    """One wait's check, judge and deadline; the sync and async waits differ only in how
    they pause between two calls."""

    def __init__(
        self,
        check: Callable[[], T],
        timeout_s: float,
        accept: Callable[[T], object],
        what: str | None,
    ) -> None:
        self._check = check
        self._accept = accept
        self._what = what
        self._timeout_s = timeout_s
        self._deadline = time.monotonic() + timeout_s

    def once(self) -> tuple[bool, T]:
        """Call the check: (accepted, its answer); past the deadline, raise WaitTimeout."""
        value = self._check()
        if self._accept(value):
            return True, value
        if time.monotonic() > self._deadline:
            raise WaitTimeout(self._what or _described(self._check), self._timeout_s, value)
        return False, value


def _described(check: Callable[..., object]) -> str:
    """A check's name; a lambda's is useless, so its line of source instead."""
    name = getattr(check, "__qualname__", repr(check))
    if "<lambda>" in name:
        with contextlib.suppress(OSError, TypeError):
            return " ".join(inspect.getsource(check).split())[:300]
    return name


def _shown(value: object, limit: int = 2000) -> str:
    """``repr(value)``, its middle cut when long (a whole log would bury the message)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]} ... [{len(text) - limit} characters] ... {text[-half:]}"
