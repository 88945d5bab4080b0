"""The artefacts a plugin can be rolled back to (``powerx host rollback --to``).

Read from the project's state, so the list is there with the simulator running or
stopped: the audit trail says when each artefact began to serve and in which generation
(a mount, a reload, a rollback), the store says which are still kept, and the active
pointer which one serves now and which served before it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.artefacts import ArtefactStore
from powerx.observe.audit import open_readonly
from powerx.observe.observer import AUDIT_DB

# Audit actions after which an artefact served the plugin.
SERVED_ACTIONS = ("plugin.mount", "reload.ok", "rollback")


@dataclass(frozen=True)
class RollbackTarget:
    digest: str
    served_at: float | None  # when it last began to serve (epoch seconds)
    generation: int | None  # the generation that served it then
    serving: bool
    previous: bool  # what `host rollback` without --to goes back to

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _last_served(state: Path, plugin_id: str) -> dict[str, tuple[float, int | None]]:
    """digest -> (time, generation) of the last time it began to serve."""
    path = state / AUDIT_DB
    if not path.is_file():
        return {}
    log = open_readonly(path)
    try:
        records = log.records(plugin=plugin_id)
    finally:
        log.close()
    served: dict[str, tuple[float, int | None]] = {}
    for record in records:
        digest = record.details.get("digest")
        if record.action in SERVED_ACTIONS and isinstance(digest, str):
            generation = record.details.get("generation")
            served[digest] = (record.ts, generation if isinstance(generation, int) else None)
    return served


def rollback_targets(state: Path, plugin_id: str) -> list[RollbackTarget]:
    """The stored artefacts that served ``plugin_id``, the latest to serve first."""
    store = ArtefactStore(state)
    pointer = store.active(plugin_id)
    served = _last_served(state, plugin_id)
    if pointer is None and not served:
        raise PowerXError(
            ErrorCode.PLUGIN_NOT_FOUND,
            f"No plugin '{plugin_id}' has served from this project's state ({state}).",
            "check the id with `powerx host status`, or run this in the folder where the "
            "simulator was started.",
        )
    kept = set(store.stored())
    digests = set(served)
    if pointer is not None:
        digests |= {d for d in (pointer.digest, pointer.previous) if d}
    targets = [
        RollbackTarget(
            digest,
            served.get(digest, (None, None))[0],
            served.get(digest, (None, None))[1],
            serving=pointer is not None and digest == pointer.digest,
            previous=pointer is not None and digest == pointer.previous,
        )
        for digest in digests
        if digest in kept
    ]
    return sorted(targets, key=lambda t: (t.serving, t.served_at or 0.0), reverse=True)


def stored_target(store: ArtefactStore, plugin_id: str, digest: str | None) -> str:
    """The one stored artefact ``host rollback`` goes to: the one ``digest`` (a prefix)
    names, else the one that served before the active one."""
    record = store.active(plugin_id)
    target = digest
    if target is None:
        target = record.previous if record else None
        if target is None:
            raise PowerXError(
                ErrorCode.NOTHING_TO_ROLL_BACK,
                f"{plugin_id} has no earlier artefact to go back to.",
                "roll back after at least one reload, or name one with --to "
                f"(`powerx host artefacts {plugin_id}` lists them).",
                status=409,
            )
    matches = [d for d in store.stored() if d.startswith(target)]
    if len(matches) != 1:
        raise PowerXError(
            ErrorCode.ARTEFACT_NOT_FOUND,
            f"No single stored artefact matches '{target[:16]}' ({len(matches)} match).",
            f"list the artefacts it accepts with `powerx host artefacts {plugin_id}`, or "
            "give more digits.",
            status=404,
        )
    return matches[0]
