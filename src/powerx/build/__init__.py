"""Turn a plugin folder into an artefact: build (per runtime), then pack (content-addressed)."""

from powerx.build.artefact import Artefact, build_artefact

__all__ = ["Artefact", "build_artefact"]
