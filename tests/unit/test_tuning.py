"""Tuning values come from the config file's ``tuning:`` section, with documented
defaults; a typo is refused like any other config key."""

from __future__ import annotations

from pathlib import Path

import pytest

from powerx.config import SimulatorConfig, Tuning, load_config
from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError
from powerx.host.reload_gate import ReloadGate
from powerx.host.simulator import Simulator


def test_every_tuning_value_has_a_description_and_a_default() -> None:
    for name, field in Tuning.model_fields.items():
        assert field.description, f"tuning.{name} has no description"
        assert field.default is not None, f"tuning.{name} has no default"


def test_tuning_values_are_read_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "host_simulator.yaml"
    path.write_text("tuning:\n  reload_max_hold_s: 0.25\n  liveness_failures: 2\n")
    config = load_config(path, env={})
    assert config.tuning.reload_max_hold_s == 0.25
    assert config.tuning.liveness_failures == 2
    assert config.tuning.after_flip_wait_s == Tuning().after_flip_wait_s  # the rest: defaults


def test_a_misspelt_tuning_key_is_refused_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "host_simulator.yaml"
    path.write_text("tuning:\n  reload_max_hold: 0.25\n")
    with pytest.raises(PowerXError) as raised:
        load_config(path, env={})
    assert raised.value.code == ErrorCode.CONFIG_INVALID
    assert any("tuning.reload_max_hold" in p.where for p in raised.value.problems)


def test_the_simulator_hands_its_tuning_to_the_gate_and_the_supervisor(tmp_path: Path) -> None:
    tuning = Tuning(reload_max_hold_s=0.5, after_flip_wait_s=0.05, drain_timeout_s=1.0)
    simulator = Simulator(SimulatorConfig(tuning=tuning), tmp_path / "state", "http://127.0.0.1:9")
    assert simulator.gate.max_hold_s == 0.5
    assert simulator.supervisor.tuning.after_flip_wait_s == 0.05
    assert simulator.supervisor.tuning.drain_timeout_s == 1.0
    assert simulator.mock_data.tuning is tuning
    assert ReloadGate().max_hold_s == Tuning().reload_max_hold_s
