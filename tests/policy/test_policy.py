"""The written policy: the shipped default, and errors that point at the line."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from typer.testing import CliRunner

from safestack.cli.policy import app
from safestack.errors import PolicyError
from safestack.policy import Audience, default_policy, load_policy, policy_from_yaml

IDS = [
    "sexual",
    "sexual_minors",
    "hate",
    "harassment",
    "violence",
    "violence_graphic",
    "self_harm",
    "violent_extremism",
    "weapons_cbrn",
    "cyber_harm",
    "illicit_activities",
    "privacy",
    "defamation",
    "elections_misinformation",
    "specialized_advice",
    "intellectual_property",
    "prompt_attack",
]
DEFAULT = resources.files("safestack.policy").joinpath("default.yaml").read_text("utf-8")


def test_default_policy_has_the_taxonomy_with_mappings() -> None:
    policy = default_policy()
    assert policy.category_ids == IDS
    assert policy.category("self_harm").mlcommons == ["S11"]
    assert "sexual/minors" in policy.category("sexual_minors").openai
    assert policy.to_openai(["hate", "violence"]) == [
        "hate",
        "hate/threatening",
        "illicit/violent",
        "violence",
    ]
    assert policy.to_mlcommons(["cyber_harm", "hate", "self_harm"]) == ["S2", "S10", "S11", "S14"]
    for category in policy.categories:
        assert category.allowed and category.disallowed and category.description.strip()
        assert len(category.examples.allowed) >= 3 and len(category.examples.disallowed) >= 3


def test_under_18_is_never_looser() -> None:
    policy = default_policy()
    adult, minor = policy.thresholds(Audience.ADULT), policy.thresholds("under_18")
    assert all(minor[c] <= adult[c] for c in IDS)
    assert any(minor[c] < adult[c] for c in IDS)
    assert policy.category("sexual").under_18.additional_disallowed


def _edit(old: str, new: str) -> str:
    assert old in DEFAULT
    return DEFAULT.replace(old, new, 1)


def _line_of(text: str, needle: str, nth: int = 1) -> int:
    start = -1
    for _ in range(nth):
        start = text.index(needle, start + 1)
    return text[:start].count("\n") + 1


CASES = {
    "yaml syntax": ("name: x\ncategories: [\n", 3, "not valid YAML"),
    "empty": ("", 1, "empty"),
    "top-level list": ("- a\n- b\n", 1, "top level must be a mapping"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_structural_errors_point_at_the_line(name: str) -> None:
    text, line, message = CASES[name]
    with pytest.raises(PolicyError, match=message) as info:
        policy_from_yaml(text, path="p.yaml")
    assert info.value.line == line and info.value.path == "p.yaml"
    assert str(info.value).startswith(f"p.yaml:{line}: ")


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        (
            "  - id: hate\n    title: Hate\n",
            "  - id: hate\n    title: Hate\n    title: Again\n",
            "    title: Again",
            "duplicate key 'title'",
        ),
        (
            "    threshold: 0.3\n    under_18:\n      threshold: 0.2\n    mlcommons: [S4]",
            "    threshold: 1.5\n    under_18:\n      threshold: 0.2\n    mlcommons: [S4]",
            "threshold: 1.5",
            "less than or equal to 1 (got 1.5)",
        ),
        ("mlcommons: [S4]", "mlcommons: [S15]", "mlcommons: [S15]", "'S15'"),
        ("  - id: hate\n", "  - id: Hate-Speech\n", "id: Hate-Speech", "must be snake_case"),
        ("  - id: harassment\n", "  - id: hate\n", "  - id: hate\n", "appears more than once"),
        ("openai: [sexual/minors]", "openai: [csam]", "openai: [csam]", "unknown OpenAI"),
    ],
)
def test_value_errors_point_at_the_offending_line(old, new, needle, message) -> None:
    text = _edit(old, new)
    nth = 2 if message == "appears more than once" else 1
    with pytest.raises(PolicyError) as info:
        policy_from_yaml(text, path="p.yaml")
    assert message in str(info.value)
    assert info.value.line == _line_of(text, needle, nth)


def test_missing_field_points_at_its_category() -> None:
    text = _edit("    title: Harassment and bullying\n", "")
    with pytest.raises(PolicyError, match=r"categories\.3\.title: required field is missing") as e:
        policy_from_yaml(text)
    assert e.value.line == _line_of(text, "  - id: harassment")  # the mapping that lacks it


def test_under_18_looser_than_adult_is_rejected() -> None:
    old = "      threshold: 0.2\n    mlcommons: [S4]"
    text = _edit(old, old.replace("0.2", "0.4"))
    with pytest.raises(PolicyError, match="under-18 rule must be at least as strict"):
        policy_from_yaml(text)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(PolicyError, match="no such file") as info:
        load_policy(tmp_path / "nope.yaml")
    assert str(tmp_path / "nope.yaml") in str(info.value)


runner = CliRunner()


def test_cli_check_ok_and_json(tmp_path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(DEFAULT)
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 0 and "17 categories" in result.stdout
    result = runner.invoke(app, ["check", str(path), "--json"])
    assert json.loads(result.stdout) == {"ok": True, "path": str(path), "categories": IDS}


def test_cli_check_reports_line_and_exits_2(tmp_path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(_edit("mlcommons: [S4]", "mlcommons: [S15]"))
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 2
    assert f"{path}:{_line_of(path.read_text(), 'mlcommons: [S15]')}:" in result.stderr
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["check", str(path), "--json"])
    out = json.loads(result.stdout)
    assert result.exit_code == 2 and out["ok"] is False and "S15" in out["error"]
    result = runner.invoke(app, ["check", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2 and "no such file" in result.stderr


def test_cli_show_audiences() -> None:
    adult = json.loads(runner.invoke(app, ["show", "--json"]).stdout)
    minor = json.loads(runner.invoke(app, ["show", "--audience", "under_18", "--json"]).stdout)
    a = {c["id"]: c["threshold"] for c in adult["categories"]}
    m = {c["id"]: c["threshold"] for c in minor["categories"]}
    assert m["sexual"] < a["sexual"]
    assert runner.invoke(app, ["show", "--audience", "kid"]).exit_code == 2
