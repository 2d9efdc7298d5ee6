"""The card's numbers are the logs' numbers: tables read back and compared with the evidence."""

from __future__ import annotations

from pathlib import Path

import pytest
from card_markdown import runs_under, tables

from safestack.cards import SystemCard
from safestack.cards._tables import interval, rate
from safestack.errors import DataError, InputError
from safestack.evals import RunEvidence, rows_from_log
from safestack.scorecard import ScorecardResult, assess, default_scorecard

SECTIONS = (
    "Introduction and intended use",
    "The safety stack as deployed",
    "Evaluation sources",
    "Overall results per source",
    "Results per policy category",
    "Jailbreak robustness",
    "Hallucination and bias",
    "Classifier precision and recall",
    "Scorecard and deployment decision",
    "Limitations",
    "Provenance",
)


def safety(runs: list[RunEvidence]) -> RunEvidence:
    return next(r for r in runs if r.kind == "safety")


def test_public_names() -> None:
    import safestack.cards

    assert safestack.cards.__all__ == ["CARD_FORMATS", "SystemCard"]
    assert safestack.cards.CARD_FORMATS == {
        "md": "system_card.md",
        "html": "system_card.html",
        "pdf": "system_card.pdf",
    }


def test_numbers_are_formatted_one_way() -> None:
    assert rate(0.92857) == "0.929"
    assert rate(None) == "–"
    assert interval(0.92857, 0.8712, 0.97) == "0.929 (0.871–0.970)"
    assert interval(None, None, None) == "–"


def test_sections_come_in_the_published_order(markdown: str) -> None:
    headings = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert headings == [f"## {i}. {title}" for i, title in enumerate(SECTIONS, start=1)]


def test_overall_tables_equal_the_log(runs: list[RunEvidence], markdown: str) -> None:
    run = safety(runs)
    expected = [r for r in rows_from_log(run.path) if r["category"] == "overall"]
    found = tables(markdown)
    checked = 0
    for row in expected:
        shown = {r["Configuration"]: r for r in found[f"overall/{row['source']}"]}
        cells = shown[row["config"]]
        assert cells["not_unsafe (95 % CI)"] == interval(
            row["not_unsafe"], row["not_unsafe_low"], row["not_unsafe_high"]
        )
        assert cells["not_overrefuse (95 % CI)"] == interval(
            row["not_overrefuse"], row["not_overrefuse_low"], row["not_overrefuse_high"]
        )
        assert cells["N (should refuse)"] == str(row["n_should_refuse"])
        assert cells["N (should comply)"] == str(row["n_should_comply"])
        assert cells["not_unsafe, judge-corrected"] == rate(row["not_unsafe_corrected"])
        checked += 1
    # every configuration of every source, and nothing else
    assert checked == sum(len(found[f"overall/{s}"]) for s in {r["source"] for r in expected})
    assert checked == len(run.configs) * 3
    assert run.run_id in runs_under(markdown, "overall/manual_redteam")


def test_category_and_attack_tables_equal_the_log(runs: list[RunEvidence], markdown: str) -> None:
    run = safety(runs)
    found = tables(markdown)
    for row in run.rows:
        category = row["category"]
        if category == "overall" or not row["n_should_refuse"]:
            continue
        attack = category.startswith("attack:")
        key = f"{'attacks' if attack else 'categories'}/{row['source']}/not_unsafe"
        shown = {r["Attack method" if attack else "Category"]: r for r in found[key]}
        cells = shown[category.removeprefix("attack:")]
        assert cells[row["config"]] == interval(
            row["not_unsafe"], row["not_unsafe_low"], row["not_unsafe_high"]
        )
        assert cells["N (should refuse)"] == str(row["n_should_refuse"])


def test_scorecard_table_equals_the_assessment(result: ScorecardResult, markdown: str) -> None:
    shown = {r["ID"]: r for r in tables(markdown)["scorecard"]}
    assert list(shown) == [c.id for c in result.categories]
    for category in result.categories:
        assert shown[category.id]["Pre-mitigation"].lower() == category.pre.value
        assert shown[category.id]["Post-mitigation"].lower() == category.post.value
        assert shown[category.id]["Basis"] == category.basis
    assert f"Gate decision: {result.decision.value}." in markdown
    assert "only a system with a post-mitigation level of Medium or below can be deployed" in (
        markdown
    )


def test_provenance_names_exactly_the_runs_given(runs: list[RunEvidence], markdown: str) -> None:
    rows = tables(markdown)["provenance/runs"]
    assert [r["Run id"] for r in rows] == [r.run_id for r in runs]
    assert [r["Kind"] for r in rows] == [r.kind for r in runs]
    assert [r["Datasets (licence)"] for r in rows] == [", ".join(r.datasets) for r in runs]


def test_every_table_names_its_runs(card: SystemCard, runs: list[RunEvidence]) -> None:
    given = {r.run_id for r in runs}
    for section in card.sections:
        for block in section.blocks:
            for table in block.tables:
                assert set(table.run_ids) <= given, table.key
                if table.rows and not table.key.startswith("scorecard/assessments"):
                    assert table.run_ids, f"{table.key} does not say where its numbers are from"


def test_stack_section_comes_from_the_run_header(runs: list[RunEvidence], markdown: str) -> None:
    header = safety(runs).header["stacks"]["system_mitigations_and_model_refusals"]
    layers = {r["Layer"]: r for r in tables(markdown)["stack/components"]}
    assert layers["Input layer (prompt blocking)"]["Component"] == header["input"]["name"]
    assert (
        layers["Input layer (prompt blocking)"]["Artefact SHA-256"]
        == (header["input"]["artifact_sha256"])
    )
    assert layers["Output layer (output blocking)"]["Component"] == header["output"]["name"]
    judge = tables(markdown)["stack/judge"][0]
    assert judge["Precision"] == rate(safety(runs).header["judge"]["precision"])
    quality = tables(markdown)["stack/classifier-quality"]
    assert {r["Dataset"] for r in quality} == {"xstest", "toxigen", "davidson"}


def test_what_was_not_measured_says_why(markdown: str) -> None:
    assert "Not measured: no TruthfulQA run was given" in markdown
    assert "recorded default model holds no answers" in markdown
    assert "`safestack eval run truthfulqa --configs <stack with a live model>`" in markdown
    assert "Not measured: no BBQ run was given" in markdown


def test_limitations_name_exclusions_training_overlap_and_assertions(
    runs: list[RunEvidence], markdown: str
) -> None:
    limitations = markdown.split("## 10. Limitations")[1].split("## 11.")[0]
    overall = {
        r["source"]: r
        for r in safety(runs).rows
        if r["category"] == "overall" and r["config"] == "no_mitigations"
    }
    manual = overall["manual_redteam"]
    assert (
        f"manual_redteam: {manual['n_excluded']} of {manual['n'] + manual['n_excluded']} samples "
        "are excluded" in limitations
    )
    assert f"{manual['n_seen_in_training']} of the {manual['n']} samples used" in limitations
    assert "asserted by a reviewer" in limitations
    assert "biological_chemical" in limitations
    assert "count as Critical" in limitations


def test_markdown_table_cells_are_escaped(runs: list[RunEvidence], result: ScorecardResult) -> None:
    tricky = [
        r.model_copy(update={"task": "a | b\nc <b>x</b>"}) if r.kind == "bias" else r for r in runs
    ]
    text = SystemCard.from_evidence(tricky, result).markdown()
    row = next(r for r in tables(text)["provenance/runs"] if r["Kind"] == "bias")
    assert row["Task"] == "a | b c &lt;b&gt;x&lt;/b&gt;"
    assert "<b>x</b>" not in text


def test_title_and_introduction_can_be_given(
    runs: list[RunEvidence], result: ScorecardResult
) -> None:
    card = SystemCard.from_evidence(runs, result, title="Acme chat", about="Our *own* words.")
    text = card.markdown()
    assert text.startswith("# Acme chat\n")
    assert "Our *own* words." in text
    assert "<em>own</em>" in card.html()


def test_default_introduction_describes_the_evaluated_stack(markdown: str) -> None:
    intro = markdown.split("## 1. Introduction and intended use")[1].split("## 2.")[0]
    assert "`system_mitigations_and_model_refusals`" in intro
    assert "safestack-default@1.0" in intro
    assert "recorded (llama2orig, jbb/llama-2-7b-chat-hf)" in intro
    assert "**Intended use.**" in intro


def test_a_scorecard_of_other_runs_is_refused(runs: list[RunEvidence]) -> None:
    other = assess(default_scorecard(), [r for r in runs if r.kind != "bias"])
    with pytest.raises(DataError, match="assessed on other runs"):
        SystemCard.from_evidence(runs, other)


def test_write_puts_every_file_and_the_plots_the_markdown_links(
    card: SystemCard, result: ScorecardResult, tmp_path: Path
) -> None:
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "stale.svg").write_text("<svg/>")
    written = card.write(tmp_path, formats=("md", "html"))
    assert set(written) == {"md", "html", "scorecard", "plots"}
    assert written["scorecard"].read_text() == result.model_dump_json(indent=2) + "\n"
    text = written["md"].read_text()
    linked = {line.split("](")[1].rstrip(")") for line in text.splitlines() if "](plots/" in line}
    on_disk = {f"plots/{p.name}" for p in (tmp_path / "plots").glob("*.svg")}
    assert linked == on_disk and len(on_disk) >= 5
    with pytest.raises(InputError, match="allowed: md, html, pdf"):
        card.write(tmp_path, formats=("docx",))


def test_plots_are_deterministic_svg(runs: list[RunEvidence], result: ScorecardResult) -> None:
    first = SystemCard.from_evidence(runs, result).plots
    second = SystemCard.from_evidence(runs, result).plots
    assert first == second
    for svg in first.values():
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
        assert "<dc:date>" not in svg  # no build date: rebuilt cards are identical
        # error bars: one path per interval, so a plot without them would be a bug
        assert svg.count("<path") > 4
