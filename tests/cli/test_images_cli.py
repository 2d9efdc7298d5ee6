"""`safestack images`: one image's verdict, and a classifier measured on a labelled folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from safestack.classify.images._corpus import SAMPLES
from safestack.cli import app

runner = CliRunner()
PHOTOS = {s.name: s for s in SAMPLES}


def _save(path: Path, name: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    PHOTOS[name].load().save(path)
    return path


@pytest.fixture(scope="module")
def person_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("labelled")
    _save(root / "photorealistic_adult" / "astronaut.png", "astronaut")
    for name in ("coffee", "rocket", "colorwheel"):
        _save(root / "no_photorealistic_person" / f"{name}.jpg", name)
    (root / "no_photorealistic_person" / "broken.png").write_bytes(b"\x89PNG not really")
    return root


def test_evaluate_json_shape_and_counts(person_folder: Path) -> None:
    result = runner.invoke(
        app, ["images", "evaluate", str(person_folder), "-c", "image-person", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["classifier"] == "image-person"
    assert report["n_samples"] == 4
    assert set(report["classes"]) == {
        "no_photorealistic_person",
        "photorealistic_adult",
        "photorealistic_child",
    }
    classes = report["classes"]
    assert classes["photorealistic_adult"]["n_samples"] == 1
    assert classes["no_photorealistic_person"]["n_samples"] == 3
    assert classes["photorealistic_child"]["n_samples"] == 0
    assert classes["photorealistic_child"]["recall"] is None
    assert classes["photorealistic_adult"]["recall"] == 1.0
    assert classes["no_photorealistic_person"]["recall"] == 1.0
    assert set(classes["photorealistic_adult"]) >= {"n_samples", "precision", "recall", "f1"}
    assert len(report["errors"]) == 1 and report["errors"][0]["path"].endswith("broken.png")


def test_evaluate_table(person_folder: Path) -> None:
    result = runner.invoke(app, ["images", "evaluate", str(person_folder), "-c", "image-person"])
    assert result.exit_code == 0, result.output
    assert "photorealistic_adult" in result.stdout and "broken.png" in result.stdout


def test_evaluate_sexual_classifier(tmp_path: Path) -> None:
    _save(tmp_path / "not_sexual" / "a.png", "chelsea")
    _save(tmp_path / "not_sexual" / "b.png", "coffee")
    result = runner.invoke(
        app, ["images", "evaluate", str(tmp_path), "-c", "image-sexual", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_samples"] == 2
    assert report["classes"]["not_sexual"]["recall"] == 1.0
    assert report["classes"]["sexual"]["n_samples"] == 0


def test_evaluate_rejects_unknown_class_folders(tmp_path: Path) -> None:
    _save(tmp_path / "cats" / "a.png", "chelsea")
    result = runner.invoke(app, ["images", "evaluate", str(tmp_path), "-c", "image-sexual"])
    assert result.exit_code == 2
    assert "cats" in result.stderr and "not_sexual" in result.stderr


def test_check_one_image(tmp_path: Path) -> None:
    path = _save(tmp_path / "astronaut.png", "astronaut")
    result = runner.invoke(app, ["images", "check", str(path), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["label"] == "photorealistic_adult" and record["flagged"] is False
    assert record["findings"]["n_faces"] >= 1 and record["findings"]["min_age_estimate"] >= 25


def test_check_unreadable_image(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(b"nope")
    result = runner.invoke(app, ["images", "check", str(path)])
    assert result.exit_code == 2 and "error" in result.stderr
