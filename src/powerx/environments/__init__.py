"""Python plugins' own dependencies: where they are declared, the environment uv builds
for them, and what of the DevKit a plugin process sees. (A Node plugin's are installed by
its build: ``bundling/node_packages.py``.)"""

from powerx.environments.declaration import DECLARATION_FILES, Declaration, find_declaration
from powerx.environments.devkit import SDK, TOOLKIT, runtime_paths
from powerx.environments.interpreter import Interpreter, interpreter_for
from powerx.environments.store import EnvironmentStore, Installed, PythonEnvironment, find_uv

__all__ = [
    "DECLARATION_FILES",
    "SDK",
    "TOOLKIT",
    "Declaration",
    "EnvironmentStore",
    "Installed",
    "Interpreter",
    "PythonEnvironment",
    "find_declaration",
    "find_uv",
    "interpreter_for",
    "runtime_paths",
]
