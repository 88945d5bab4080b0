"""uv installs from where the developer's pip or uv configuration points."""

from __future__ import annotations

from pathlib import Path

from powerx.environments.registries import uv_environment


def pip_conf(home: Path, text: str) -> dict[str, str]:
    (home / ".config" / "pip").mkdir(parents=True)
    (home / ".config" / "pip" / "pip.conf").write_text(text)
    # No system-wide files: XDG_CONFIG_DIRS points at an empty folder.
    return {"HOME": str(home), "XDG_CONFIG_DIRS": str(home / "none")}


def test_pip_settings_become_uv_settings(tmp_path: Path) -> None:
    env = pip_conf(
        tmp_path,
        "[global]\nindex-url = https://pypi.example/simple\n"
        "extra-index-url = https://a.example/simple\n  https://b.example/simple\n"
        "find-links = /opt/wheels\ncert = /etc/ca.pem\n",
    )
    uv = uv_environment(env)
    assert uv["UV_INDEX_URL"] == "https://pypi.example/simple"
    assert uv["UV_EXTRA_INDEX_URL"] == "https://a.example/simple https://b.example/simple"
    assert uv["UV_INDEX_STRATEGY"] == "unsafe-best-match"  # pip's way across indexes
    assert uv["UV_FIND_LINKS"] == "/opt/wheels" and uv["SSL_CERT_FILE"] == "/etc/ca.pem"


def test_pip_environment_variables_beat_its_files(tmp_path: Path) -> None:
    env = pip_conf(tmp_path, "[global]\nindex-url = https://file.example/simple\n")
    env["PIP_INDEX_URL"] = "https://env.example/simple"
    assert uv_environment(env)["UV_INDEX_URL"] == "https://env.example/simple"


def test_uvs_own_configuration_is_left_as_it_is(tmp_path: Path) -> None:
    env = pip_conf(tmp_path, "[global]\nindex-url = https://pip.example/simple\n")
    env.update({"UV_DEFAULT_INDEX": "https://uv.example/simple", "UV_LINK_MODE": "symlink"})
    uv = uv_environment(env)
    assert "UV_INDEX_URL" not in uv and uv["UV_DEFAULT_INDEX"] == "https://uv.example/simple"
    # Symlinks into uv's cache would point at nothing in a sandbox.
    assert uv["UV_LINK_MODE"] == "hardlink"
