"""Stack configurations: presets, YAML files with file:line errors, and the `stack` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from safestack.cli import app
from safestack.errors import ConfigError
from safestack.stack import PRESETS, StackConfig, load_stack_config, stack_config_from_yaml


def test_presets_are_the_published_configurations() -> None:
    assert list(PRESETS) == [
        "no_mitigations",
        "model_refusals_only",
        "system_mitigations",
        "system_mitigations_and_model_refusals",
    ]
    layers = {
        name: (c.input.enabled, c.output.enabled, c.model_refusals) for name, c in PRESETS.items()
    }
    assert layers == {
        "no_mitigations": (False, False, False),
        "model_refusals_only": (False, False, True),
        "system_mitigations": (True, True, False),
        "system_mitigations_and_model_refusals": (True, True, True),
    }
    # Without counted refusals the recorded model is a helpful-only one, and vice versa.
    assert PRESETS["system_mitigations"].recorded_setups()[0] == "mistralinstruct"
    assert PRESETS["model_refusals_only"].recorded_setups()[0] == "llama2orig"


def test_a_file_starts_from_a_preset_and_overrides_fields() -> None:
    config = stack_config_from_yaml(
        "preset: system_mitigations\n"
        "input:\n"
        "  window: 3\n"
        "output:\n"
        "  monitor:\n"
        "    when_adult: always\n"
    )
    assert config.name == "system_mitigations"
    assert config.model_refusals is False  # from the preset
    assert config.input.window == 3 and config.input.enabled is True
    assert config.output.monitor.when_adult == "always"
    assert config.output.monitor.when_under_18 == "always"  # default kept


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("preset: strongest\n", 1, "unknown preset 'strongest'; allowed: no_mitigations"),
        ("name: x\ninput:\n  windw: 3\n", 3, "unknown field 'windw'; did you mean 'window'?"),
        (
            "name: x\noutput:\n  on_error: maybe\n",
            3,
            "on_error: Input should be 'block' or 'allow'",
        ),
        ("name: x\ninput:\n  timeout_s: 0\n", 3, "timeout_s: Input should be greater than 0"),
        ("name: x\nname: y\n", 2, "duplicate key"),
        ("- a\n- b\n", 1, "top level must be a mapping"),
        (
            "output:\n  monitor:\n    uncertain_band: [1.2, 0.5]\n",
            3,
            "uncertain_band must satisfy",
        ),
    ],
)
def test_invalid_files_fail_at_the_line(text: str, line: int, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        stack_config_from_yaml(text, path="stack.yaml")
    assert info.value.line == line
    assert needle in info.value.reason
    assert str(info.value).startswith(f"stack.yaml:{line}: ")


def test_under_18_fail_open_is_not_configurable() -> None:
    # on_error is the adults' choice; there is no field that makes minors fail open.
    with pytest.raises(ConfigError, match="unknown field 'on_error_under_18'"):
        stack_config_from_yaml("input:\n  on_error_under_18: allow\n")


def test_policy_path_is_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text("name: mine\npolicy: policies/p.yaml\n")
    config = load_stack_config(tmp_path / "stack.yaml")
    assert config.policy == str(tmp_path / "policies" / "p.yaml")


def test_stack_check_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    good = tmp_path / "good.yaml"
    good.write_text("preset: system_mitigations\noutput:\n  on_error: allow\n")
    result = runner.invoke(app, ["stack", "check", str(good), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["ok"] is True and out["name"] == "system_mitigations"
    assert any("released unchecked" in w for w in out["warnings"])

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ninput:\n  classifier:\n    name: no-such-classifier\n")
    result = runner.invoke(app, ["stack", "check", str(bad), "--json"])
    assert result.exit_code == 2
    assert "unknown classifier 'no-such-classifier'" in json.loads(result.stdout)["error"]

    missing_policy = tmp_path / "policy.yaml"
    missing_policy.write_text("name: x\npolicy: nowhere.yaml\n")
    result = runner.invoke(app, ["stack", "check", str(missing_policy)])
    assert result.exit_code == 2 and "nowhere.yaml: no such file" in result.stderr

    result = runner.invoke(app, ["stack", "check", str(tmp_path / "absent.yaml")])
    assert result.exit_code == 2 and "no such file" in result.stderr


def test_stack_show_prints_a_file_that_loads_back() -> None:
    result = CliRunner().invoke(app, ["stack", "show", "system_mitigations"])
    assert result.exit_code == 0, result.output
    again = StackConfig.model_validate(yaml.safe_load(result.stdout))
    assert again == PRESETS["system_mitigations"]
    result = CliRunner().invoke(app, ["stack", "show", "nonsense"])
    assert result.exit_code == 2 and "presets: no_mitigations" in result.stderr
