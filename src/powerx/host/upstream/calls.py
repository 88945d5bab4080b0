"""One call to the host's gRPC services as the rest of the simulator sees it, and how a
refusal reaches the caller: a gRPC status for the PowerXError's HTTP status, its message
and fix as the details, its stable code in the ``x-powerx-error`` trailer."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, NoReturn

import grpc

from powerx.errors import PowerXError

ERROR_METADATA = "x-powerx-error"
_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    501: grpc.StatusCode.UNIMPLEMENTED,
}

Context = grpc.aio.ServicerContext[Any, Any]

__all__ = ["ERROR_METADATA", "CallRecord", "abort", "elapsed_ms", "metadata_of", "status_of"]


@dataclass(frozen=True)
class CallRecord:
    """One call, for the log, the metrics and (when it matters) the audit."""

    plugin: str | None  # None: a caller that named none
    method: str
    code: str  # the gRPC status name: "OK", "UNAUTHENTICATED", ...
    latency_ms: float
    tenant_id: int | None = None
    error: PowerXError | None = None
    request: dict[str, Any] = field(default_factory=dict)  # masked before it is kept


def status_of(error: PowerXError | None) -> grpc.StatusCode:
    if error is None:
        return grpc.StatusCode.OK
    return _STATUS.get(error.status, grpc.StatusCode.INTERNAL)


async def abort(context: Context, error: PowerXError) -> NoReturn:
    details = f"{error.message} Fix: {error.fix}" if error.fix else error.message
    await context.abort(status_of(error), details, ((ERROR_METADATA, error.code),))


def metadata_of(context: Context) -> dict[str, str]:
    return {
        key.lower(): value
        for key, value in (context.invocation_metadata() or ())
        if isinstance(value, str)
    }


def elapsed_ms(since: float) -> float:
    """Milliseconds since ``since`` (a ``perf_counter`` reading)."""
    return (time.perf_counter() - since) * 1000
