"""Server reflection (grpcio-reflection, v1alpha as PowerXPluginBase's client asks for it)
over our descriptor pool, for callers with a credential only."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from google.protobuf.descriptor_pool import DescriptorPool

from powerx.errors import PowerXError
from powerx.host.upstream.calls import (
    CallRecord,
    Context,
    abort,
    elapsed_ms,
    metadata_of,
    status_of,
)

REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"

__all__ = ["REFLECTION", "guarded_reflection"]


def guarded_reflection(
    services: list[str],
    pool: DescriptorPool,
    check: Callable[[dict[str, str]], str | None],
    on_call: Callable[[CallRecord], None],
) -> Any:
    """The reflection servicer for ``services``; ``check`` returns the calling plugin (or
    None for the developer) or raises the refusal."""
    from grpc_reflection.v1alpha import reflection

    class GuardedReflection(reflection.aio.ReflectionServicer):  # type: ignore[misc]
        async def ServerReflectionInfo(self, requests: Any, context: Context) -> AsyncIterator[Any]:
            started = time.perf_counter()
            try:
                plugin = check(metadata_of(context))
            except PowerXError as error:
                code = status_of(error).name
                on_call(CallRecord(None, REFLECTION, code, elapsed_ms(started), error=error))
                await abort(context, error)
            on_call(CallRecord(plugin, REFLECTION, "OK", elapsed_ms(started)))
            async for answer in super().ServerReflectionInfo(requests, context):
                yield answer

    return GuardedReflection([*services, reflection.SERVICE_NAME], pool=pool)
