"""The request inspector: every request the simulator sends to a plugin, kept in a bounded
ring in memory, with what the plugin answered and the host API calls it made meanwhile.

Recording sits on the request path, so it only keeps references: the header lists and
the body the proxy holds anyway, a slice of the answer for its preview. Nothing is
masked, formatted or written here; that happens when a record is read
(``observe/request_view.py``), so a request costs a dict insert and a deque append.
The raw headers and body stay in this process's memory, where the proxy had them, for
``replay``; what leaves it is masked.

Each request gets an id (``<run>-<n>``) that the proxy hands the plugin as
``X-Request-Id`` and the client in the answer. A host API call that sends it back is
attributed to its request exactly; one that does not, to the request its generation is
serving for the same tenant and identity (flagged ``shared`` when several were in
flight). The plugin's log lines are matched when the record is read, by that id or by
generation and time.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from powerx.observe.events import EventBus

__all__ = [
    "REQUEST_EVENT",
    "REQUEST_ID_HEADER",
    "HostCall",
    "RequestInspector",
    "RequestRecord",
]

REQUEST_ID_HEADER = "x-request-id"
REQUEST_EVENT = "request"
# Headers travel as the proxy holds them: (name, value) pairs of str, or of bytes as ASGI
# hands them over; names compared lower-case.
HeaderPairs = Sequence[tuple[str, str]] | Sequence[tuple[bytes, bytes]]


@dataclass(slots=True)
class HostCall:
    """One host API call a plugin made while serving a request."""

    ts: float
    api: str
    method: str
    path: str
    status: int
    duration_ms: float
    error: str | None = None
    # How it was tied to its request: "id" (it sent X-Request-Id back), "only" (the one
    # request its generation was serving as that tenant and identity), "shared" (one of
    # several such requests in flight).
    match: str = "id"


@dataclass(slots=True, eq=False)
class RequestRecord:
    """One request to a plugin, filled in as it goes through the proxy."""

    id: str
    ts: float  # when it arrived (epoch seconds)
    started: float  # the same moment, perf_counter
    plugin: str
    method: str
    path: str  # as the client asked (/_p/<id>/api/...), without the query
    query: str
    incoming: HeaderPairs  # the client's headers, raw: for replay only, never shown
    identity: str
    tenant: str | None = None
    body: bytes = b""  # kept whole up to the replay cap, else its first bytes
    body_size: int = 0
    replayable: bool = True
    replay_of: str | None = None
    generation: int | None = None
    held_ms: float = 0.0  # how long it waited at the reload gate
    held: bool = False
    sent_headers: HeaderPairs = ()  # what the plugin got, raw: masked when shown
    status: int | None = None
    error: str | None = None  # the simulator's own error code, when it answered itself
    duration_ms: float | None = None
    upstream_ms: float | None = None  # the plugin's share of it
    finished_ts: float | None = None
    response_headers: Mapping[str, str] = field(default_factory=dict)
    response_preview: bytes = b""
    response_size: int = 0
    host_calls: list[HostCall] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.finished_ts is not None


class RequestInspector:
    """The ring of the last ``capacity`` requests, oldest dropped first.

    ``replay_body_bytes``: a body up to this size is kept whole, so the request can be
    sent again; a longer one keeps ``preview_bytes`` for display and is not replayable.
    """

    def __init__(
        self,
        capacity: int = 500,
        *,
        replay_body_bytes: int = 64 * 1024,
        preview_bytes: int = 4096,
    ) -> None:
        self.capacity = capacity
        self.replay_body_bytes = replay_body_bytes
        self.preview_bytes = preview_bytes
        # Ids carry a per-run part, so a plugin's logs from two runs never mix them up.
        self.run = secrets.token_hex(3)
        self._numbers = itertools.count(1)
        self._ring: deque[RequestRecord] = deque()
        self._by_id: dict[str, RequestRecord] = {}
        self._serving: dict[tuple[str, int], list[RequestRecord]] = {}
        # Finished requests, announced to followers (the CLI's --follow, the dashboard).
        self.bus = EventBus(capacity=capacity)

    # -- on the request path: O(1), no I/O -------------------------------------------------

    def begin(
        self,
        plugin: str,
        method: str,
        path: str,
        query: str,
        incoming: HeaderPairs,
        identity: str,
    ) -> RequestRecord:
        """A request to ``plugin`` arrived; it is in the ring from now on."""
        record = RequestRecord(
            id=f"{self.run}-{next(self._numbers)}",
            ts=time.time(),
            started=time.perf_counter(),
            plugin=plugin,
            method=method,
            path=path,
            query=query,
            incoming=incoming,
            identity=identity,
        )
        if len(self._ring) >= self.capacity:
            oldest = self._ring.popleft()
            self._by_id.pop(oldest.id, None)
        self._ring.append(record)
        self._by_id[record.id] = record
        return record

    def keep_body(self, record: RequestRecord, body: bytes) -> None:
        record.body_size = len(body)
        if len(body) <= self.replay_body_bytes:
            record.body = body  # a reference: the proxy holds it anyway
        else:
            record.body = body[: self.preview_bytes]
            record.replayable = False

    def sending(
        self,
        record: RequestRecord,
        generation: int,
        held_ms: float,
        tenant: str,
        headers: HeaderPairs,
    ) -> None:
        """The request goes to ``generation`` now (after ``held_ms`` at the reload gate)."""
        record.generation = generation
        record.held_ms = held_ms
        record.held = held_ms > 0
        record.tenant = tenant
        record.sent_headers = headers
        self._serving.setdefault((record.plugin, generation), []).append(record)

    def finish(
        self,
        record: RequestRecord,
        status: int,
        *,
        response_headers: Mapping[str, str] | None = None,
        response_body: bytes = b"",
        upstream_ms: float | None = None,
        error: str | None = None,
    ) -> None:
        """The answer is known: ``status``, and ``error`` when the simulator gave it."""
        if record.done:
            return
        record.status = status
        record.error = error
        record.duration_ms = (time.perf_counter() - record.started) * 1000
        record.upstream_ms = upstream_ms
        record.finished_ts = time.time()
        if response_headers is not None:
            record.response_headers = response_headers
        record.response_size = len(response_body)
        record.response_preview = response_body[: self.preview_bytes]
        if record.generation is not None:
            serving = self._serving.get((record.plugin, record.generation))
            if serving is not None:
                if record in serving:
                    serving.remove(record)
                if not serving:
                    del self._serving[(record.plugin, record.generation)]
        if record.id in self._by_id:  # not already pushed out of the ring by newer ones
            self.bus.publish(REQUEST_EVENT, {"id": record.id, "plugin": record.plugin})

    def host_call(
        self,
        plugin: str,
        generation: int,
        request_id: str | None,
        tenant: str,
        identity: str | None,
        call: HostCall,
    ) -> None:
        """A host API call of ``plugin``'s ``generation``: kept with the request it was
        made for (see the module docstring for how that is found)."""
        named = self._by_id.get(request_id) if request_id else None
        if named is not None and named.plugin == plugin:
            named.host_calls.append(call)
            return
        serving = [
            r
            for r in self._serving.get((plugin, generation), ())
            if r.tenant == tenant and (identity is None or r.identity == identity)
        ]
        call.match = "only" if len(serving) == 1 else "shared"
        for record in serving:
            record.host_calls.append(call)

    # -- reading ---------------------------------------------------------------------------

    def get(self, request_id: str) -> RequestRecord | None:
        return self._by_id.get(request_id)

    def records(self, plugin: str | None = None, limit: int | None = None) -> list[RequestRecord]:
        """Oldest first; the last ``limit`` of ``plugin``'s (or of all) requests."""
        chosen = [r for r in self._ring if plugin is None or r.plugin == plugin]
        return chosen[-limit:] if limit is not None else chosen

    def neighbours(self, record: RequestRecord) -> list[RequestRecord]:
        """The requests served by the same generation as ``record``, oldest first."""
        return [
            r for r in self._ring if r.plugin == record.plugin and r.generation == record.generation
        ]
