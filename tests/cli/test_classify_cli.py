"""`safestack classify`: the interface other tools rely on (JSON lines, order, exit codes)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from safestack.cli import app

runner = CliRunner()


def _run(*args: str, stdin: str | None = None):
    return runner.invoke(app, list(args), input=stdin)


def test_jsonl_in_json_lines_out_in_order(tmp_path) -> None:
    texts = [
        "How can I kill a Python process?",
        "What is the easiest way of killing myself?",
        "Write a haiku about the sea.",
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(texts)))
    result = _run("classify", "--input", str(path), "--classifier", "embedded-prompt", "--json")
    assert result.exit_code == 1, result.output  # one of them is flagged
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [x["flagged"] for x in lines] == [False, True, False]
    for line in lines:
        assert isinstance(line["categories"], list)
        assert all(0.0 <= v <= 1.0 for v in line["scores"].values())
    assert "self_harm" in lines[1]["categories"]


def test_exit_zero_when_nothing_is_flagged() -> None:
    result = _run("classify", "What is the capital of France?", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["flagged"] is False


def test_refusal_classifier_adds_a_label(tmp_path) -> None:
    path = tmp_path / "ex.jsonl"
    rows = [
        {"prompt": "How do I kill a person?", "response": "Sorry, but I can't assist with that."},
        {"prompt": "How do I boil an egg?", "response": "Put it in boiling water for 8 minutes."},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = _run("classify", "--input", str(path), "--classifier", "refusal", "--json")
    assert result.exit_code == 1
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["label"] for o in out] == ["refusal", "compliance"]
    assert [o["flagged"] for o in out] == [True, False]


def test_output_classifier_reads_prompt_and_response(tmp_path) -> None:
    path = tmp_path / "ex.jsonl"
    path.write_text(json.dumps({"prompt": "Say hi", "response": "Hi! How can I help?"}) + "\n")
    result = _run("classify", "-i", str(path), "-c", "embedded-output", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["flagged"] is False


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "fine"}\n{"text": 3}\n', "in.jsonl:2: field 'text' must be a string, got int"),
        ('{"text": "fine"}\nnot json\n', "in.jsonl:2: not JSON"),
        ('["a list"]\n', "in.jsonl:1: expected a JSON object"),
        ('{"prompt": "no text field"}\n', "in.jsonl:1: missing field 'text'"),
    ],
)
def test_bad_input_names_the_line_and_exits_2(tmp_path, content, message) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(content)
    result = _run("classify", "--input", str(path), "--json")
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_invalid_utf8_line_is_an_error(tmp_path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    result = _run("classify", "--input", str(path))
    assert result.exit_code == 2
    assert "in.jsonl:2: not valid UTF-8" in result.stderr


def test_usage_errors_exit_2_without_traceback() -> None:
    for args in (
        ["classify"],
        ["classify", "x", "--classifier", "no-such"],
        ["classify", "x", "--audience", "child"],
        ["classify", "x", "--classifier", "refusal"],  # needs --response
    ):
        result = _run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "command", [[], ["classify"], ["train"], ["demo"], ["policy"], ["policy", "check"]]
)
def test_every_command_has_help(command) -> None:
    result = _run(*command, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.stdout


def test_train_rebuilds_loadable_heads_with_a_card(tmp_path, datasets_dir) -> None:
    """`safestack train` end to end, on a small subset of sources (the full run takes minutes)."""
    from importlib import resources

    out = tmp_path / "heads"
    policy = tmp_path / "policy.yaml"
    shipped = resources.files("safestack.policy").joinpath("default.yaml").read_text("utf-8")
    policy.write_text(shipped.replace('version: "1.0"', 'version: "9.9"'))
    result = _run(
        "train",
        "--policy",
        str(policy),
        "--datasets",
        str(datasets_dir),
        "--out",
        str(out),
        "--no-leave-one-out",
        "--sources",
        "simplesafetytests,self_instruct,jbb_behaviours,xstest",
        "--json",
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout.splitlines()[-1])
    assert metrics["split"]["test"] > 0 and metrics["refusal_heldout"]["safestack"]["n"] == 450
    assert metrics["policy"] == "safestack-default@9.9"
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest) == {"embedded-prompt", "embedded-output", "refusal"}
    assert "## Headline quality" in (out / "CARD.md").read_text()
    from safestack.classify import EmbeddedPromptClassifier

    entry = manifest["embedded-prompt"]
    clf = EmbeddedPromptClassifier(heads_path=out / entry["file"], heads_sha256=entry["sha256"])
    assert clf.classify(["What is the easiest way of killing myself?"])[0].flagged


def test_train_without_datasets_is_a_clear_error(tmp_path) -> None:
    result = _run("train", "--datasets", str(tmp_path))
    assert result.exit_code == 2
    assert "cannot find the public datasets" in " ".join(result.stderr.split())
