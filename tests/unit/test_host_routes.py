"""The simulator's HTTP surface is held to starlette's shape: every endpoint a module-level
function of a ``host/routes/`` module (reaching state through ``request.app.state``), never
a handler nested in a factory, and every route module's list mounted in the app."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

import powerx.host.routes
from powerx.config import SimulatorConfig
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.app import create_app
from powerx.host.routes.guards import QueryNumber, int_param
from powerx.host.simulator import Simulator


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Starlette:
    monkeypatch.setenv("POWERX_RUN_DIR", str(tmp_path / "run"))
    simulator = Simulator(SimulatorConfig(), tmp_path / "state", "http://127.0.0.1:9")
    return create_app(simulator)


def _endpoints(app: Starlette) -> list[Route]:
    routes = [route for route in app.routes if isinstance(route, Route)]
    assert len(routes) == len(app.routes), "every route of the app is a plain Route"
    return routes


def test_no_route_handler_is_a_closure(app: Starlette) -> None:
    nested = [
        f"{route.path}: {route.endpoint.__module__}.{route.endpoint.__qualname__}"
        for route in _endpoints(app)
        if "<locals>" in route.endpoint.__qualname__
    ]
    assert not nested, "handlers nested in a function (make them module-level):\n" + "\n".join(
        nested
    )


def test_every_handler_is_a_function_of_a_route_module(app: Starlette) -> None:
    elsewhere = []
    for route in _endpoints(app):
        endpoint = route.endpoint
        module = sys.modules[endpoint.__module__]
        at_module_level = getattr(module, endpoint.__name__, None) is endpoint
        if not (endpoint.__module__.startswith("powerx.host.routes.") and at_module_level):
            elsewhere.append(f"{route.path}: {endpoint.__module__}.{endpoint.__qualname__}")
    assert not elsewhere, "handlers outside host/routes/:\n" + "\n".join(elsewhere)


def test_every_route_module_is_mounted(app: Starlette) -> None:
    mounted = {id(route) for route in app.routes}
    modules = [
        importlib.import_module(f"powerx.host.routes.{info.name}")
        for info in pkgutil.iter_modules(powerx.host.routes.__path__)
    ]
    with_routes = [module for module in modules if hasattr(module, "routes")]
    assert {module.__name__.rsplit(".", 1)[1] for module in with_routes} >= {
        "plugins",
        "reload",
        "debug",
        "observe",
    }
    missing = [
        f"{module.__name__}: {route.path}"
        for module in with_routes
        for route in module.routes
        if id(route) not in mounted
    ]
    assert not missing, "routes no app serves:\n" + "\n".join(missing)


@pytest.mark.parametrize(
    ("name", "query", "code"),
    [
        ("limit", b"limit=0", ErrorCode.INVALID_LIMIT),
        ("tail", b"tail=many", ErrorCode.INVALID_TAIL),
    ],
)
def test_a_query_number_out_of_range_is_refused_with_its_registered_code(
    name: QueryNumber, query: bytes, code: ErrorCode
) -> None:
    request = Request({"type": "http", "query_string": query, "headers": []})
    with pytest.raises(PowerXError) as refused:
        int_param(request, name, 10, 1, 100)
    assert (refused.value.code, refused.value.status) == (code, 400)


def test_a_query_number_in_range_or_absent_is_read() -> None:
    request = Request({"type": "http", "query_string": b"limit=7", "headers": []})
    assert int_param(request, "limit", 10, 1, 100) == 7
    assert int_param(request, "tail", 3, 0, 100) == 3
