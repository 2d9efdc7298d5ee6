"""The written policy: the shipped default, errors that point at the line, and the CLI."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner, Result

import safestack.policy
from safestack.cli.policy import app
from safestack.errors import PolicyError
from safestack.policy import (
    MLCOMMONS_HAZARDS,
    OPENAI_MODERATION_CATEGORIES,
    Audience,
    Policy,
    default_policy,
    load_policy,
    policy_from_yaml,
)

# id → (MLCommons codes, OpenAI moderation categories), in the policy's order.
MAPPING: dict[str, tuple[list[str], list[str]]] = {
    "sexual": (["S3", "S12"], ["sexual"]),
    "sexual_minors": (["S4"], ["sexual/minors"]),
    "hate": (["S10"], ["hate", "hate/threatening"]),
    "harassment": ([], ["harassment", "harassment/threatening"]),
    "violence": (["S1"], ["violence", "illicit/violent"]),
    "violence_graphic": ([], ["violence/graphic"]),
    "self_harm": (["S11"], ["self-harm", "self-harm/intent", "self-harm/instructions"]),
    "violent_extremism": (["S1"], ["violence", "hate/threatening", "illicit/violent"]),
    "weapons_cbrn": (["S9"], ["illicit/violent"]),
    "cyber_harm": (["S2", "S14"], ["illicit"]),
    "illicit_activities": (["S2"], ["illicit"]),
    "privacy": (["S7"], []),
    "defamation": (["S5"], []),
    "elections_misinformation": (["S13"], []),
    "specialized_advice": (["S6"], []),
    "intellectual_property": (["S8"], []),
    "prompt_attack": ([], []),
}
IDS = list(MAPPING)
DEFAULT_TEXT = resources.files("safestack.policy").joinpath("default.yaml").read_text("utf-8")


# --- the shipped default ---------------------------------------------------------------------


def test_public_names_are_pinned() -> None:
    assert safestack.policy.__all__ == [
        "MLCOMMONS_HAZARDS",
        "OPENAI_MODERATION_CATEGORIES",
        "Audience",
        "Category",
        "Clause",
        "ClauseKind",
        "Examples",
        "Policy",
        "Under18Rule",
        "default_policy",
        "load_policy",
        "policy_from_yaml",
    ]


def test_default_policy_is_loaded_once() -> None:
    policy = default_policy()
    assert policy is default_policy()
    assert policy.name == "safestack-default" and policy.version == "1.0"
    assert "over" in policy.description.lower() and "fiction" in policy.description.lower()


def test_default_policy_has_the_17_categories_with_their_mappings() -> None:
    policy = default_policy()
    assert policy.category_ids == IDS
    for category in policy.categories:
        assert (category.mlcommons, category.openai) == MAPPING[category.id], category.id


def test_the_default_covers_both_external_taxonomies() -> None:
    policy = default_policy()
    assert set(policy.to_mlcommons(IDS)) == set(MLCOMMONS_HAZARDS)
    assert set(policy.to_openai(IDS)) == OPENAI_MODERATION_CATEGORIES


def test_every_category_has_rules_and_labelled_examples() -> None:
    for category in default_policy().categories:
        assert category.title and len(category.description.split()) >= 40, category.id
        assert 3 <= len(category.disallowed) <= 6, category.id
        assert 3 <= len(category.allowed) <= 6, category.id
        assert len(category.examples.disallowed) >= 3, category.id
        assert len(category.examples.allowed) >= 3, category.id
        assert not set(category.examples.allowed) & set(category.examples.disallowed)


def test_thresholds_per_audience() -> None:
    policy = default_policy()
    adult = policy.thresholds()
    minor = policy.thresholds(Audience.UNDER_18)
    assert policy.thresholds("under_18") == minor and policy.thresholds(Audience.ADULT) == adult
    assert list(adult) == IDS
    assert adult["sexual_minors"] == adult["weapons_cbrn"] == 0.3
    assert adult["prompt_attack"] == 0.6
    assert {adult[c] for c in IDS} - {0.3, 0.6} == {0.5}
    assert minor["sexual"] == 0.35 and minor["sexual_minors"] == 0.2
    assert all(minor[c] <= adult[c] for c in IDS)
    assert policy.category("self_harm").threshold_for(Audience.UNDER_18) == minor["self_harm"]
    with pytest.raises(ValueError):
        policy.thresholds("children")


def test_minors_have_additional_rules_where_they_need_them() -> None:
    policy = default_policy()
    extra = {c.id: " ".join(c.under_18.additional_disallowed).lower() for c in policy.categories}
    assert "role-play" in extra["sexual"]
    assert "gore" in extra["violence_graphic"]
    assert "method" in extra["self_harm"] and "weight-loss" in extra["self_harm"]
    assert "alcohol" in extra["illicit_activities"] and "gambling" in extra["illicit_activities"]
    assert "firearm" in extra["weapons_cbrn"]
    assert "medication" in extra["specialized_advice"]


def test_flags_are_reported_in_external_vocabularies() -> None:
    policy = default_policy()
    assert policy.to_openai(["violence", "violent_extremism"]) == [
        "hate/threatening",
        "illicit/violent",
        "violence",
    ]
    assert policy.to_mlcommons(["self_harm", "cyber_harm", "hate"]) == ["S2", "S10", "S11", "S14"]
    assert policy.to_mlcommons(["prompt_attack"]) == [] and policy.to_openai([]) == []
    with pytest.raises(KeyError, match="no category 'gore'"):
        policy.to_openai(["gore"])


def test_duplicate_ids_are_rejected_without_yaml_too() -> None:
    data = default_policy().model_dump()
    data["categories"].append(data["categories"][0])
    with pytest.raises(ValidationError, match="'sexual' appears more than once"):
        Policy.model_validate(data)


# --- malformed policies: the file, the line, and what is wrong ------------------------------

MINI = """\
name: mini
version: "1"
description: A two-category test policy.
categories:
  - id: hate
    title: Hate
    description: Attacks on protected groups.
    disallowed: [Slurs used as attacks]
    threshold: 0.5
    under_18: {threshold: 0.35}
    mlcommons: [S10]
    openai: [hate]
  - id: self_harm
    title: Self-harm
    description: Encouraging self-injury.
    disallowed: [Methods of self-injury]
    threshold: 0.5
    under_18:
      threshold: 0.3
    mlcommons: [S11]
"""


def _replace(line: int, new: str | None) -> str:
    """MINI with 1-based ``line`` replaced by ``new`` (or removed when ``new`` is None)."""
    lines = MINI.splitlines()
    lines[line - 1 : line] = [] if new is None else [new]
    return "\n".join(lines) + "\n"


def _insert(after: int, new: str) -> str:
    lines = MINI.splitlines()
    lines.insert(after, new)
    return "\n".join(lines) + "\n"


def _load_error(tmp_path: Path, text: str) -> PolicyError:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.path == str(path)
    return info.value


def test_the_mini_policy_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(MINI, encoding="utf-8")
    policy = load_policy(str(path))
    assert policy.category_ids == ["hate", "self_harm"]
    assert policy.thresholds(Audience.UNDER_18) == {"hate": 0.35, "self_harm": 0.3}


MALFORMED: dict[str, tuple[str, int, list[str]]] = {
    "yaml syntax": (
        _replace(6, "    title: Hate: speech"),
        6,
        ["not valid YAML", "mapping values are not allowed here"],
    ),
    "tab indentation": (
        _replace(9, "\tthreshold: 0.5"),
        9,
        ["not valid YAML", "'\\t'"],
    ),
    "duplicate key": (
        _insert(9, "    threshold: 0.4"),
        10,
        ["duplicate key 'threshold'", "first defined on line 9"],
    ),
    "duplicate top-level key": (
        _insert(1, "name: other"),
        2,
        ["duplicate key 'name' (first defined on line 1)"],
    ),
    "missing field in a category": (
        _replace(14, None),
        13,  # the mapping that lacks it
        ["categories.1.title", "required field 'title' is missing"],
    ),
    "missing top-level field": (
        _replace(2, None),
        1,
        ["version: required field 'version' is missing"],
    ),
    "unknown field": (
        _replace(14, "    tittle: Self-harm"),
        14,
        ["unknown field 'tittle'; did you mean 'title'?", "allowed: id, title, description"],
    ),
    "threshold above 1": (
        _replace(17, "    threshold: 1.5"),
        17,
        ["categories.1.threshold", "less than or equal to 1", "(got 1.5)"],
    ),
    "threshold not a number": (
        _replace(9, "    threshold: high"),
        9,
        ["categories.0.threshold", "valid number", "(got 'high')"],
    ),
    "unquoted version": (
        _replace(2, "version: 1.0"),
        2,
        ["version: Input should be a valid string", 'quote it: "1.0"'],
    ),
    "list given as a string": (
        _replace(16, "    disallowed: Methods of self-injury"),
        16,
        ["categories.1.disallowed", "valid list", "(got a string: 'Methods of self-injury')"],
    ),
    "id not snake_case": (
        _replace(13, "  - id: Self-Harm"),
        13,
        ["category id 'Self-Harm' must be snake_case"],
    ),
    "unknown MLCommons code": (
        _replace(11, "    mlcommons: [S10, S15]"),
        11,
        ["unknown MLCommons hazard code(s) ['S15']", "allowed: S1 … S14"],
    ),
    "unknown OpenAI category": (
        _replace(12, "    openai: [hateful]"),
        12,
        ["unknown OpenAI moderation category ['hateful']", "allowed: harassment,"],
    ),
    "duplicate category id": (
        _replace(13, "  - id: hate"),
        13,  # the second occurrence
        ["category id 'hate' appears more than once (first as categories.0)"],
    ),
    "under_18 looser than adult": (
        _replace(19, "      threshold: 0.6"),
        19,
        ["under_18.threshold 0.6 is looser than threshold 0.5", "'self_harm'", "at most 0.5"],
    ),
    "arbitrary python object": (
        _replace(3, "description: !!python/object/apply:os.system [echo]"),
        3,
        ["could not determine a constructor", "only plain data"],
    ),
    "two documents": (
        MINI + "---\nname: again\n",
        21,
        ["expected a single document"],
    ),
    "empty file": ("", 1, ["the file is empty"]),
    "only comments": ("# nothing here yet\n", 1, ["the file is empty"]),
    "top-level list": (
        "# a policy must be a mapping\n- name: mini\n",
        2,
        ["top level must be a mapping", "not a list"],
    ),
    "top-level string": ("just some words\n", 1, ["not a string"]),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_policy_reports_file_line_and_reason(tmp_path: Path, case: str) -> None:
    text, line, fragments = MALFORMED[case]
    error = _load_error(tmp_path, text)
    assert error.line == line, str(error)
    for fragment in fragments:
        assert fragment in error.reason
    assert str(error) == f"{error.path}:{line}: {error.reason}"


def test_several_errors_report_the_first_and_count_the_rest() -> None:
    text = _replace(9, "    threshold: 2").replace("[S11]", "[S99]")
    with pytest.raises(PolicyError, match=r"categories\.0\.threshold.*\(and 1 more\)") as info:
        policy_from_yaml(text)
    assert info.value.line == 9 and info.value.path is None
    assert str(info.value).startswith("<policy>:9: ")


def test_errors_deep_in_the_default_policy_point_at_their_line() -> None:
    old = "  - id: privacy\n    title: Privacy\n"
    assert old in DEFAULT_TEXT
    text = DEFAULT_TEXT.replace(old, old + "    title: Private life\n", 1)
    with pytest.raises(PolicyError, match="duplicate key 'title'") as info:
        policy_from_yaml(text, path="default.yaml")
    first = DEFAULT_TEXT[: DEFAULT_TEXT.index(old)].count("\n") + 2  # the line of "title:"
    assert info.value.line == first + 1 > 400
    assert f"first defined on line {first}" in info.value.reason


def test_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError, match="no such file") as info:
        load_policy(path)
    assert info.value.path == str(path) and info.value.line is None
    with pytest.raises(PolicyError, match="is a directory"):
        load_policy(tmp_path)


def test_a_file_that_is_not_utf8_is_a_policy_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(MINI.replace("Hate", "Haß").encode("latin-1"))
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(path)


def test_yaml_anchors_and_merge_keys_are_plain_yaml() -> None:
    text = MINI.replace("    under_18: {threshold: 0.35}", "    under_18: &strict {threshold: 0.3}")
    text = text.replace(
        "    under_18:\n      threshold: 0.3\n", "    under_18:\n      <<: *strict\n"
    )
    policy = policy_from_yaml(text)
    assert policy.thresholds(Audience.UNDER_18) == {"hate": 0.3, "self_harm": 0.3}


# --- the CLI ---------------------------------------------------------------------------------

runner = CliRunner()


def _invoke(*args: str) -> Result:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_cli_check_accepts_a_valid_policy(tmp_path: Path) -> None:
    path = _write(tmp_path, DEFAULT_TEXT)
    result = _invoke("check", str(path))
    assert result.exit_code == 0
    assert result.stdout.strip() == f"{path}: ok — 17 categories"
    result = _invoke("check", str(path), "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"ok": True, "path": str(path), "categories": IDS}


def test_cli_check_reports_file_line_reason_and_exits_2(tmp_path: Path) -> None:
    path = _write(tmp_path, _replace(11, "    mlcommons: [S15]"))
    result = _invoke("check", str(path))
    assert result.exit_code == 2 and result.stdout == ""
    assert f"error: {path}:11: categories.0.mlcommons: unknown MLCommons" in result.stderr
    result = _invoke("check", str(path), "--json")
    assert result.exit_code == 2
    record = json.loads(result.stdout)
    assert record["ok"] is False and record["path"] == str(path) and record["line"] == 11
    assert "['S15']" in record["error"]


def test_cli_check_missing_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    result = _invoke("check", str(missing))
    assert result.exit_code == 2 and f"{missing}: no such file" in result.stderr
    result = _invoke("check", str(missing), "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "ok": False,
        "path": str(missing),
        "line": None,
        "error": "no such file",
    }


def test_cli_show_the_default_policy_per_audience() -> None:
    result = _invoke("show")
    assert result.exit_code == 0
    assert "safestack-default" in result.stdout and "sexual_minors" in result.stdout
    assert "0.30" in result.stdout and "S14" in result.stdout
    adult = json.loads(_invoke("show", "--json").stdout)
    minor = json.loads(_invoke("show", "--audience", "under_18", "--json").stdout)
    assert adult["audience"] == "adult" and minor["audience"] == "under_18"
    rows = {row["id"]: row for row in minor["categories"]}
    assert [row["id"] for row in adult["categories"]] == IDS
    assert rows["sexual"]["threshold"] == 0.35 and rows["sexual"]["additional_disallowed"]
    assert rows["cyber_harm"]["mlcommons"] == ["S2", "S14"]
    assert {row["threshold"] for row in adult["categories"]} == {0.3, 0.5, 0.6}


def test_cli_show_a_file_and_its_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, MINI)
    record = json.loads(_invoke("show", str(path), "--json").stdout)
    assert record["name"] == "mini" and [r["id"] for r in record["categories"]] == [
        "hate",
        "self_harm",
    ]
    bad = _write(tmp_path, _replace(19, "      threshold: 0.6"))
    result = _invoke("show", str(bad))
    assert result.exit_code == 2 and f"{bad}:19:" in result.stderr
    result = _invoke("show", "--audience", "kids")
    assert result.exit_code == 2 and "'kids' is not one of" in result.stderr


@pytest.mark.parametrize("command", [[], ["check"], ["show"]])
def test_cli_help(command: list[str]) -> None:
    result = _invoke(*command, "--help")
    assert result.exit_code == 0 and "Usage" in result.stdout
    assert len(result.stdout.split()) > 20


def test_clauses_are_citable_and_under_18_rules_only_for_minors() -> None:
    policy = default_policy()
    adult = policy.clauses()
    minor = policy.clauses(Audience.UNDER_18)
    ids = [c.id for c in minor]
    assert len(ids) == len(set(ids))
    assert not any(c.kind == "under_18" for c in adult)
    extra = [c for c in minor if c.kind == "under_18"]
    assert extra and all(c.forbids for c in extra)
    violence = policy.category("violence")
    first = policy.clause("violence.disallowed.1")
    assert (first.category, first.text, first.forbids) == ("violence", violence.disallowed[0], True)
    assert policy.clause("violence.allowed.1").forbids is False
    assert len(adult) == sum(len(c.disallowed) + len(c.allowed) for c in policy.categories)
    with pytest.raises(KeyError, match="no clause"):
        policy.clause("violence.disallowed.999")
