"""Where uv installs from: the registries the developer's uv or pip configuration names.

uv reads its own settings (``uv.toml``, ``UV_*``) by itself. A developer who configured only
pip (``pip.conf``, ``PIP_*``: a company index, extra indexes, local wheel folders, a CA
file, constraints) gets the same sources from uv: each pip setting is passed on as its uv
variable, unless a uv one is set already.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["uv_environment"]

# pip's setting -> uv's variable (values are space-separated lists in both).
_PIP_TO_UV = {
    "index-url": "UV_INDEX_URL",
    "extra-index-url": "UV_EXTRA_INDEX_URL",
    "find-links": "UV_FIND_LINKS",
    "constraint": "UV_CONSTRAINT",
    "cert": "SSL_CERT_FILE",
}
# uv variables any of which means "uv is configured for indexes already".
_UV_INDEXES = ("UV_INDEX", "UV_DEFAULT_INDEX", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL")


def _pip_config_files(env: Mapping[str, str]) -> list[Path]:
    """pip's own order: global, user, then PIP_CONFIG_FILE (later ones win)."""
    dirs = env.get("XDG_CONFIG_DIRS", "/etc/xdg").split(os.pathsep)
    files = [Path(d) / "pip" / "pip.conf" for d in reversed(dirs)] + [Path("/etc/pip.conf")]
    home = Path(env.get("HOME", str(Path.home())))
    config_home = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    files += [home / ".pip" / "pip.conf", config_home / "pip" / "pip.conf"]
    if env.get("PIP_CONFIG_FILE"):
        files.append(Path(env["PIP_CONFIG_FILE"]))
    return files


def _pip_settings(env: Mapping[str, str]) -> dict[str, str]:
    settings: dict[str, str] = {}
    for path in _pip_config_files(env):
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (OSError, configparser.Error):
            continue
        for section in ("global", "install"):
            if parser.has_section(section):
                for key in _PIP_TO_UV:
                    if parser.has_option(section, key):
                        settings[key] = " ".join(parser.get(section, key).split())
    for key in _PIP_TO_UV:  # PIP_INDEX_URL ... beat the files, as in pip
        value = env.get("PIP_" + key.upper().replace("-", "_"))
        if value:
            settings[key] = " ".join(value.split())
    return settings


def uv_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` plus uv variables for what only pip was told; never one uv has already."""
    result = dict(env)
    indexes_set = any(env.get(name) for name in _UV_INDEXES)
    for key, value in _pip_settings(env).items():
        variable = _PIP_TO_UV[key]
        if variable in result or (key.endswith("index-url") and indexes_set):
            continue
        result[variable] = value
        if key == "extra-index-url":
            # pip picks the best version across all its indexes; uv by default takes a
            # package from the first index that has it. Resolve as pip would.
            result.setdefault("UV_INDEX_STRATEGY", "unsafe-best-match")
    # Files linked from uv's cache, not symlinked: a sandbox sees the environment, not the
    # cache, so a symlink there would point at nothing.
    if result.get("UV_LINK_MODE") == "symlink":
        result["UV_LINK_MODE"] = "hardlink"
    return result
