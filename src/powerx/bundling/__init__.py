"""Turn a plugin folder into an artefact: build (per runtime), then pack (content-addressed)."""

from powerx.bundling.artefact import Artefact
from powerx.bundling.session import BuildSession, build_artefact

__all__ = ["Artefact", "BuildSession", "build_artefact"]
