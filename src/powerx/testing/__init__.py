"""Run a real simulator from a test or a script, isolated from your own login and state.

    from powerx.testing import LocalSimulator

    with LocalSimulator(["./my-plugin"], watch=True) as sim:  # returns once it watches
        assert sim.get("/plugins/com.example.my-plugin/").status_code == 200
        edit_and_save()
        sim.wait_generation("com.example.my-plugin", 2)

The simulator is the real ``powerx host start --mock`` process on a free loopback port,
with a throwaway mock credential and state folder (unless you pass your own). Nothing here
sleeps for a guessed time: each ``wait_*`` polls a state the simulator reports (a watcher
armed, a reload pending, a generation serving, a request held), and :func:`wait_until`
polls any other; a wait that times out raises :class:`WaitTimeout`, naming what it
waited for and the last value it saw.

This is also the DevKit's own test harness: its test fixtures are thin wrappers over
:class:`SimulatorProcess`, so a plugin's tests start the simulator the way ours do.
"""

from powerx.testing.simulator import (
    LocalSimulator,
    SimulatorProcess,
    isolated_env,
    run_powerx,
    wait_until_up,
)
from powerx.testing.waits import WaitTimeout, wait_until, wait_until_async

__all__ = [
    "LocalSimulator",
    "SimulatorProcess",
    "WaitTimeout",
    "isolated_env",
    "run_powerx",
    "wait_until",
    "wait_until_async",
    "wait_until_up",
]
