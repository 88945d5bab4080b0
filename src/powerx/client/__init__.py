"""How the developer's tools talk to a running simulator, in one place: where it runs,
the developer credential, and how its answers and failures become a :class:`PowerXError`.

- :mod:`powerx.client.sync`: the CLI commands (status, stop, logs, tools, debug ...).
- :mod:`powerx.client.dev`: the dev loop (async, retries a push the simulator did not get).
- :mod:`powerx.client.telemetry`: the project's telemetry, through the simulator when one
  runs, from its files otherwise.
"""
