"""A plugin's local settings and secrets: ``.dev.vars`` beside its manifest (dotenv syntax,
as ``wrangler dev`` reads it), and ``.dev.vars.<identity>`` over it for the run's identity.

The values reach the plugin's environment at every generation start; they are never packed
(``build.pack`` skips the files) and are masked wherever the simulator writes (logs,
events, audit, telemetry) once read. A name the simulator sets itself is not taken from the
file: the plugin's contract with the simulator stays the simulator's.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

from powerx.observe.masking import remember_secret_values

DEV_VARS = ".dev.vars"
_RESERVED = re.compile(
    r"^(POWERX_|PX_|PLUGIN_CTX_|NODE_OPTIONS$|PYTHONPATH$|PORT$|PATH$|HOME$|"
    r"(HTTPS?|NO)_PROXY$|(https?|no)_proxy$)"
)


@dataclass(frozen=True)
class DevVars:
    values: dict[str, str] = field(default_factory=dict)
    files: tuple[Path, ...] = ()
    ignored: tuple[str, ...] = ()  # names the simulator sets itself


def dev_var_files(plugin_dir: Path, identity: str | None) -> list[Path]:
    names = [DEV_VARS] + ([f"{DEV_VARS}.{identity}"] if identity else [])
    return [plugin_dir / name for name in names if (plugin_dir / name).is_file()]


def read_dev_vars(plugin_dir: Path, identity: str | None = None) -> DevVars:
    """The plugin's settings, the identity's file over the shared one; remembered as
    secrets for masking."""
    files = dev_var_files(plugin_dir, identity)
    merged: dict[str, str] = {}
    for path in files:
        merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    ignored = tuple(sorted(name for name in merged if _RESERVED.match(name)))
    values = {k: v for k, v in merged.items() if k not in ignored}
    remember_secret_values(values.values())
    return DevVars(values, tuple(files), ignored)


def settings_digest(settings: DevVars) -> str:
    """Tells two sets of values apart without keeping them (a generation keeps this)."""
    if not settings.values:
        return ""
    text = json.dumps(settings.values, sort_keys=True).encode()
    return hashlib.sha256(text).hexdigest()
