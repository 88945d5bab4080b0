"""Plugins' own dependencies: where they are declared, the environment uv builds for a
Python plugin (the node_modules npm installs for a Node one), and what of the DevKit a
plugin process sees."""

from powerx.environments.declaration import DECLARATION_FILES, Declaration, find_declaration
from powerx.environments.devkit import SDK, TOOLKIT, runtime_paths
from powerx.environments.interpreter import Interpreter, interpreter_for
from powerx.environments.node_packages import (
    NODE_DECLARATION_FILES,
    NodeDeclaration,
    NodeInstall,
    ensure_node_modules,
    find_node_declaration,
    package_name,
    undeclared_package,
)
from powerx.environments.store import EnvironmentStore, Installed, PythonEnvironment, find_uv

__all__ = [
    "DECLARATION_FILES",
    "NODE_DECLARATION_FILES",
    "SDK",
    "TOOLKIT",
    "Declaration",
    "EnvironmentStore",
    "Installed",
    "Interpreter",
    "NodeDeclaration",
    "NodeInstall",
    "PythonEnvironment",
    "ensure_node_modules",
    "find_declaration",
    "find_node_declaration",
    "find_uv",
    "interpreter_for",
    "package_name",
    "runtime_paths",
    "undeclared_package",
]
