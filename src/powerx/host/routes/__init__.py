"""The simulator's HTTP routes, one module per concern; ``host/app.py`` assembles them.

Each module holds module-level endpoints (``async def handler(request) -> Response``) that
reach the simulator through ``request.app.state`` (see ``state.py``), gathered in its
``routes`` list; the checks they share (credential, dashboard cookie, feature flags, JSON
bodies, query parameters) are in ``guards.py``.

- ``plugins``: the plugin proxy, the host API, ``/``, ``/healthz``, status and shutdown.
- ``reload``: the dev loop's uploads, pending and watch notes, rollback, cache clearing.
- ``type_checks``: a dev loop's type check report.
- ``debug``: breakpoints and the console's debug sessions.
- ``observe``: telemetry, reconciliation, metrics, alerts and the audit trail.
- ``streams``: the event and log streams (SSE).
- ``dashboard``: the dashboard page and its one-time link.
- ``tools``, ``requests``, ``mock_data``: the manifests' tools, the request inspector, the
  editable mock data.
- ``dev``, ``local_install``: PowerX's dev hot-load protocol and local-install endpoints
  (their request bodies and credentials: ``dev_requests``; their answers: ``dev_wire``).

Nothing is imported here: the host modules the endpoints call import ``guards`` (the
JSON body reader), so importing every route module from this package would be a cycle.
"""

__all__: list[str] = []
